# AITRAPP: every target installs what it needs first (venv, Python deps, the
# Rust extension via `maturin develop`). `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV    ?= .venv
PY      := $(VENV)/bin/python
BIN     := $(VENV)/bin
# dev-opt: optimised but quick to relink; `release` (fat LTO) for wheels and benches.
PROFILE ?= dev-opt
export PYO3_PYTHON := $(abspath $(PY))

RUST_SRC := $(shell find core-rs -name '*.rs' -o -name Cargo.toml 2>/dev/null) Cargo.toml
PY_SRC   := $(shell find python -name '*.py' -o -name '*.pyi' 2>/dev/null)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV)/.deps: pyproject.toml | $(VENV)/bin/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "maturin>=1.7,<2"
	$(BIN)/maturin develop -q --extras dev,docs,research --profile $(PROFILE)
	touch $@

$(VENV)/.built-$(PROFILE): $(VENV)/.deps $(RUST_SRC) Cargo.lock
	$(BIN)/maturin develop -q --profile $(PROFILE) --skip-install 2>/dev/null || $(BIN)/maturin develop -q --profile $(PROFILE)
	rm -f $(VENV)/.built-*
	touch $@

.PHONY: develop
develop: $(VENV)/.built-$(PROFILE) ## Create .venv, install deps, build the Rust extension into it

.PHONY: test
test: deploy-tools ## cargo test + clippy + fmt, ruff, mypy (strict + stubtest), pytest
	$(MAKE) --no-print-directory -j2 --output-sync=target test-rust lint-py
	@# Bytecode of the package, once (0.4 s): with PYTHONDONTWRITEBYTECODE set, every
	@# `aitrapp` subprocess the tests start would compile it again (about 0.3 s each).
	$(PY) -m compileall -q python
	$(BIN)/pytest -q

# The Rust checks need an interpreter (pyo3's build script), not the extension: in
# `make test` they run while the venv installs and the extension builds (then lint-py),
# which is mostly one core of pip. pytest runs after both, on a quiet machine.
# Cargo keeps its own -j: the sub-make's jobserver is not passed to these lines.
NO_JOBSERVER := env -u MAKEFLAGS -u MFLAGS
.PHONY: test-rust
test-rust: | $(VENV)/bin/python
	cargo fmt --all --check
	$(NO_JOBSERVER) cargo test -q -p aitrapp-core
	$(NO_JOBSERVER) cargo clippy -q --workspace --all-targets -- -D warnings

.PHONY: lint-py
lint-py: develop
	$(BIN)/ruff check python tests benches
	$(BIN)/ruff format --check python tests benches
	@# stubtest (one core, ~6 s) beside mypy (one core, ~15 s without a cache); both must pass.
	$(BIN)/python -m mypy.stubtest aitrapp._core --allowlist .mypy-stubtest-allowlist & stub=$$!; \
	rc=0; $(BIN)/mypy || rc=$$?; wait $$stub || rc=$$?; exit $$rc

.PHONY: lint
lint: develop ## Linters only: rustfmt, clippy -D warnings, ruff, mypy, stubtest
	cargo fmt --all --check
	cargo clippy -q --workspace --all-targets -- -D warnings
	$(MAKE) --no-print-directory lint-py

.PHONY: fmt
fmt: develop ## Format Rust and Python sources in place
	cargo fmt --all
	$(BIN)/ruff format python tests benches
	$(BIN)/ruff check --fix -q python tests benches || true

.PHONY: paper
paper: develop ## Run one PAPER session end to end (embedded PostgreSQL, synthetic feed, API on 127.0.0.1:8000)
	$(BIN)/aitrapp paper $(ARGS)

.PHONY: migrate
migrate: develop ## Apply database migrations (DATABASE_URL, else the embedded PostgreSQL in var/pgdata)
	$(BIN)/aitrapp migrate

.PHONY: burnin-report
burnin-report: develop ## Daily report + burn-in check for today (IST) or DATE=YYYY-MM-DD
	d="$(DATE)"; d="$${d:-$$(TZ=Asia/Kolkata date +%F)}"; \
	$(BIN)/aitrapp report --date "$$d" && $(BIN)/aitrapp burnin check --date "$$d"

.PHONY: openapi
openapi: develop ## Regenerate api/openapi.json from the app (a test fails when it is stale)
	$(BIN)/python -m aitrapp.api.openapi --out api/openapi.json

.PHONY: dev
dev: develop ## Serve the control API + PAPER runtime (DATABASE_URL/REDIS_URL if set, else embedded); ARGS="--speed 10x"
	$(BIN)/aitrapp serve $(ARGS)

.PHONY: metrics
metrics: ## Print trader_* metrics of the running API (AITRAPP_API_HOST/PORT, token if set)
	@host="$${AITRAPP_API_HOST:-127.0.0.1}"; port="$${AITRAPP_API_PORT:-8000}"; auth=(); \
	if [ -n "$${AITRAPP_API_TOKEN:-}" ]; then auth=(-H "Authorization: Bearer $$AITRAPP_API_TOKEN"); fi; \
	curl -fsS "$${auth[@]}" "http://$$host:$$port/metrics" | grep -E '^(# (HELP|TYPE) )?trader_'

.PHONY: bench
bench: ## Benchmarks: criterion (Rust) and pytest-benchmark (Python), release build
	$(MAKE) --no-print-directory develop PROFILE=release
	cargo bench -p aitrapp-core
	$(BIN)/pytest -q benches --benchmark-enable --benchmark-only --benchmark-columns=min,median,mean,max,ops

.PHONY: chaos
chaos: develop ## Chaos suite, long form: 12 SIGKILLs, 20 s database hang, Redis killed, signals, API fuzz
	AITRAPP_CHAOS=long $(BIN)/pytest -q -s tests/chaos -p no:cacheprovider --timeout 1800

.PHONY: wheel
wheel: $(VENV)/.deps ## Build the abi3 release wheel into dist/
	$(BIN)/maturin build --release --out dist

# Debian tools for the deploy checks in `make test` (tests/deploy): promtool (package
# prometheus) and docker-compose; curl and jq run the docs' runnable blocks (tests/docs).
# Installed when missing and apt-get is usable (root); otherwise the promtool and
# docker-compose tests are skipped, each with its reason in pytest's summary.
DEPLOY_TOOLS := promtool:prometheus docker-compose:docker-compose curl:curl jq:jq

.PHONY: deploy-tools
deploy-tools: ## Install promtool, docker-compose, curl, jq (Debian) for the deploy/docs checks
	@for pair in $(DEPLOY_TOOLS); do tool=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$tool >/dev/null && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing $$pkg (for $$tool)"; \
	    apt() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$pkg >/dev/null; }; \
	    apt || { apt-get update -qq && apt; } \
	      || echo "WARNING: could not install $$pkg: the $$tool checks will be SKIPPED"; \
	  else echo "WARNING: $$tool is missing (no root apt-get): the $$tool checks will be SKIPPED"; fi; \
	done

COMPOSE ?= docker compose

.PHONY: up
up: ## Start the compose stack (postgres, redis, api + dashboard, prometheus, grafana); needs .env
	@test -f .env || { echo "error: no .env: cp .env.example .env and fill it in" >&2; exit 2; }
	@token=$$(sed -n 's/^AITRAPP_API_TOKEN=//p' .env | tail -n 1 | tr -d "\"'"); \
	if [ $${#token} -lt 16 ]; then \
	  echo "error: .env: AITRAPP_API_TOKEN needs >= 16 characters (openssl rand -hex 32)" >&2; exit 2; fi; \
	mkdir -p deploy/secrets && chmod 700 deploy/secrets; \
	printf '%s' "$$token" > deploy/secrets/api_token; chmod 644 deploy/secrets/api_token
	$(COMPOSE) up -d --build

.PHONY: down
down: ## Stop the compose stack (named volumes are kept)
	$(COMPOSE) down

.PHONY: docs
docs: develop ## Build the manual (docs/, mkdocs-material) into site/; any warning fails
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The console's browser tests (tests/ui) drive Debian's chromium headless through
# Playwright (no browser download). Installed when missing (root + apt-get); else
# make test stops here, and pytest alone fails those tests with this advice.
.PHONY: browser
browser: ## Install Debian's chromium for the console's browser tests, if missing
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing chromium (for tests/ui)"; \
	    apt() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	    apt || { apt-get update -qq && apt; }; \
	  else echo "error: chromium is missing: (sudo) apt-get install chromium" >&2; exit 1; fi; }

test: browser

.PHONY: clean
clean: ## Remove build outputs and the venv (keeps var/ and logs/)
	rm -rf $(VENV) target dist .pytest_cache .mypy_cache .ruff_cache .hypothesis
