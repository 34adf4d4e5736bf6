# syntax=docker/dockerfile:1
# AITRAPP image: stage 1 builds the abi3 wheel exactly as `make wheel` does
# (a venv, maturin from PyPI, `maturin build --release --out dist`; a test checks
# the steps match the Makefile); stage 2 installs it on a slim Python and runs as
# a non-root user. Build: `docker compose build` (or `make up`).
ARG RUST_VERSION=1.95
ARG PYTHON_VERSION=3.11

# ---- build: Rust toolchain + Debian's Python 3.11 (abi3: one wheel for 3.11+)
FROM rust:${RUST_VERSION}-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock pyproject.toml README.md ./
COPY core-rs ./core-rs
COPY python ./python
ENV VENV=/opt/build-venv
RUN python3 -m venv $VENV
RUN $VENV/bin/pip install -q --upgrade pip
RUN $VENV/bin/pip install -q "maturin>=1.7,<2"
RUN $VENV/bin/maturin build --release --out dist

# ---- run: the wheel and its dependencies, nothing else
FROM python:${PYTHON_VERSION}-slim-bookworm AS run
RUN groupadd --system --gid 10001 aitrapp \
 && useradd --system --uid 10001 --gid aitrapp --home-dir /data --shell /usr/sbin/nologin aitrapp \
 && mkdir -p /data && chown aitrapp:aitrapp /data
COPY --from=build /src/dist/*.whl /tmp/wheels/
RUN python -m venv /opt/aitrapp \
 && /opt/aitrapp/bin/pip install -q --no-cache-dir /tmp/wheels/*.whl \
 && rm -rf /tmp/wheels
ENV PATH=/opt/aitrapp/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AITRAPP_API_HOST=0.0.0.0 \
    AITRAPP_API_PORT=8000
# var/ (Kite token, spill files), logs/ and reports/ live under /data: mount a volume.
WORKDIR /data
USER aitrapp:aitrapp
EXPOSE 8000
ENTRYPOINT ["aitrapp"]
CMD ["serve"]
