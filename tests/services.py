"""Throwaway servers for the shared-store tests: a PostgreSQL cluster and an S3-compatible store.

Both listen on 127.0.0.1 at a free port and live in a temporary folder of their own, so every
pytest session (every pytest-xdist worker, too) gets its own. tests/conftest.py wraps them in the
`postgres_server`, `postgres_database`, `s3_server` and `s3_bucket` fixtures.
"""

from __future__ import annotations

import itertools
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"
SUPERUSER = "postgres"
# initdb and pg_ctl refuse to run as root; as root the cluster belongs to this OS user.
CLUSTER_OS_USER = "postgres"
POSTGRES_PACKAGE_HINT = (
    "the shared-store tests need PostgreSQL server binaries (initdb, pg_ctl, postgres): "
    "install the Debian package `postgresql` (apt-get install postgresql) and run "
    "`make bootstrap`, which records their folder in .venv/postgres-bin"
)
S3_ACCESS_KEY = "testing"
S3_SECRET_KEY = "testing"
S3_REGION = "us-east-1"
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it


class ServiceError(RuntimeError):
    """A test server could not be started or driven; the message says what it printed."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


def libpq_connection_string(**fields: str | int) -> str:
    """`key=value` pairs; a value with spaces, quotes or backslashes is quoted as libpq wants."""

    def quote(value: str | int) -> str:
        text = str(value)
        if text and not re.search(r"[\s'\\]", text):
            return text
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    return " ".join(f"{key}={quote(value)}" for key, value in fields.items())


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- PostgreSQL -------------------------------------------------------------------------------


def find_postgres_bin() -> Path | None:
    """The folder of initdb, pg_ctl and postgres: the one `make bootstrap` recorded, else the
    newest /usr/lib/postgresql/*/bin, else the folder of the initdb on PATH."""
    candidates: list[Path] = []
    recorded = Path(sys.prefix) / "postgres-bin"
    if recorded.is_file():
        candidates.append(Path(recorded.read_text(encoding="utf-8").strip()))

    def major(folder: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", folder.parent.name))

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=major, reverse=True)
    if on_path := shutil.which("initdb"):
        candidates.append(Path(on_path).resolve().parent)
    for folder in candidates:
        if all(os.access(folder / name, os.X_OK) for name in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


@dataclass(frozen=True)
class _OsUser:
    uid: int
    gid: int

    @classmethod
    def for_cluster(cls) -> _OsUser | None:
        """None for an ordinary user (the cluster is ours); as root, the postgres OS user."""
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam(CLUSTER_OS_USER)
        except KeyError:
            raise ServiceError(
                f"running as root, and initdb refuses to run as root, but there is no "
                f"`{CLUSTER_OS_USER}` OS user to own the test cluster; the Debian package "
                f"`postgresql` creates it (or run the tests as an ordinary user)"
            ) from None
        return cls(entry.pw_uid, entry.pw_gid)


def _clean_environment() -> dict[str, str]:
    # A developer's PGHOST, PGPASSWORD or PGDATA must not steer the test cluster or its clients.
    env = {name: value for name, value in os.environ.items() if not name.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster: trust for the `postgres` superuser over loopback, a
    password (SCRAM) for every other role, durability off for speed."""

    bin_dir: Path
    root: Path
    port: int = 0
    host: str = LOOPBACK
    _os_user: _OsUser | None = None
    _passwords: dict[str, str] = field(default_factory=dict)
    _names: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "socket"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @classmethod
    def start(cls, bin_dir: Path) -> PostgresServer:
        os_user = _OsUser.for_cluster()
        # Not under pytest's basetemp: as root that is private to root, and the cluster's files
        # must belong to the postgres user, who has to reach them.
        root = Path(tempfile.mkdtemp(prefix="circlecost-pg-"))
        server = cls(bin_dir=bin_dir, root=root, _os_user=os_user)
        try:
            server.socket_dir.mkdir()
            if os_user is not None:
                for path in (root, server.socket_dir):
                    os.chown(path, os_user.uid, os_user.gid)
            server._initdb()
            server._start()
        except BaseException:
            server.stop()
            raise
        return server

    def _run_as_owner(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        owner: dict[str, Any] = {}
        if self._os_user is not None:
            owner = {"user": self._os_user.uid, "group": self._os_user.gid, "extra_groups": []}
        return subprocess.run(
            list(args),
            cwd=self.root,
            env=_clean_environment(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **owner,
        )

    def _initdb(self) -> None:
        done = self._run_as_owner(
            [
                str(self.bin_dir / "initdb"),
                "--pgdata",
                str(self.data_dir),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--no-sync",
            ]
        )
        if done.returncode != 0:
            raise ServiceError(f"initdb failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        # Trust only the superuser; every other role must present its password, so a test can
        # see what a wrong one does.
        (self.data_dir / "pg_hba.conf").write_text(
            "local all all trust\n"
            f"host all {SUPERUSER} 127.0.0.1/32 trust\n"
            f"host all {SUPERUSER} ::1/128 trust\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n",
            encoding="utf-8",
        )
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                "\n# circlecost test cluster: throwaway, so durability is off\n"
                f"listen_addresses = '{LOOPBACK}'\n"
                f"unix_socket_directories = '{self.socket_dir}'\n"
                "max_connections = 100\n"
                "shared_buffers = 32MB\n"
                "fsync = off\n"
                "synchronous_commit = off\n"
                "full_page_writes = off\n"
                "password_encryption = 'scram-sha-256'\n"
            )

    def _start(self) -> None:
        failure = ""
        for _ in range(START_ATTEMPTS):
            self.port = free_port()
            done = self._pg_ctl(
                "start", "-w", "-t", "60", "-l", str(self.log_file), "-o", f"-p {self.port}"
            )
            if done.returncode == 0:
                return
            failure = f"{done.stdout}{done.stderr}\n--- {self.log_file}:\n{_tail(self.log_file)}"
        raise ServiceError(f"PostgreSQL did not start in {self.root}:\n{failure}")

    def _pg_ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._run_as_owner(
            [str(self.bin_dir / "pg_ctl"), "--pgdata", str(self.data_dir), *args]
        )

    def stop(self) -> None:
        """Stops the cluster at once (nothing in it needs a checkpoint) and removes its folder."""
        if (self.data_dir / "postmaster.pid").exists():
            self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
        shutil.rmtree(self.root, ignore_errors=True)

    # --- clients ---

    def connection_string(
        self, dbname: str = "postgres", user: str = SUPERUSER, password: str | None = None
    ) -> str:
        """A libpq connection string, e.g. `host=127.0.0.1 port=5999 user=postgres dbname=x`."""
        fields: dict[str, str | int] = {"host": self.host, "port": self.port, "user": user}
        if password is not None:
            fields["password"] = password
        fields["dbname"] = dbname
        return libpq_connection_string(**fields)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Runs `sql` in `database` (a name, as the superuser, or a whole connection string such
        as fresh_database returns); returns the unaligned, tuples-only output."""
        target = database if "=" in database else self.connection_string(database)
        psql = self.bin_dir / "psql"
        done = subprocess.run(
            [
                str(psql) if psql.exists() else "psql",
                "--no-psqlrc",
                "--quiet",
                "--no-align",
                "--tuples-only",
                "--set",
                "ON_ERROR_STOP=1",
                "--dbname",
                target,
                "--command",
                sql,
            ],
            env=_clean_environment(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise ServiceError(f"psql failed ({done.returncode}) on {sql!r}:\n{done.stderr}")
        return done.stdout.strip()

    def create_role(self, name: str, password: str) -> None:
        """A login role that must authenticate with `password` (SCRAM) over TCP."""
        _check_identifier(name)
        literal = "'" + password.replace("'", "''") + "'"
        self.psql(f'CREATE ROLE "{name}" LOGIN PASSWORD {literal}')
        self._passwords[name] = password

    def fresh_database(self, name_hint: str = "db", *, owner: str | None = None) -> str:
        """Creates a new, empty database and returns its connection string: as the superuser, or
        as `owner` (a role made with create_role, which then owns the database and its public
        schema) with that role's password."""
        stem = re.sub(r"[^a-z0-9_]+", "_", name_hint.lower()).strip("_")[:40] or "db"
        name = f"{stem}_{next(self._names)}_{secrets.token_hex(3)}"
        if owner is None:
            self.psql(f'CREATE DATABASE "{name}"')
            return self.connection_string(name)
        if owner not in self._passwords:
            raise ValueError(f"no role {owner!r}: make it with create_role first")
        self.psql(f'CREATE DATABASE "{name}" OWNER "{owner}"')
        return self.connection_string(name, user=owner, password=self._passwords[owner])


def _check_identifier(name: str) -> None:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"{name!r} is not a plain lower-case SQL identifier")


# --- S3 (moto) --------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Bucket:
    """A fresh bucket on the test S3 server; `env` is what a DuckDB or boto3 client needs."""

    bucket: str
    prefix: str
    endpoint: str  # host:port, as DuckDB's S3 secret takes it (no scheme)
    env: Mapping[str, str]

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        return s3_client(self.endpoint_url)


def s3_client(endpoint_url: str) -> Any:
    import boto3  # here, so only the S3 tests pay for importing boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
        region_name=S3_REGION,
    )


@dataclass
class S3Server:
    """moto's S3-compatible server, in a process group of its own."""

    process: subprocess.Popen[bytes]
    port: int
    log_file: Path
    host: str = LOOPBACK
    _buckets: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.endpoint}"

    @classmethod
    def start(cls, log_dir: Path, timeout: float = 30.0) -> S3Server:
        executable = Path(sys.executable).parent / "moto_server"
        if not executable.exists():
            raise ServiceError(
                f"no {executable}: the S3 tests need moto's server; install the dev extra "
                f"(`make bootstrap`, or pip install 'moto[server]==5.2.5')"
            )
        failure = ""
        for attempt in range(START_ATTEMPTS):
            port = free_port()
            log_file = log_dir / f"moto-{port}-{attempt}.log"
            with log_file.open("wb") as log:
                process = subprocess.Popen(
                    [str(executable), "-H", LOOPBACK, "-p", str(port)],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            server = cls(process=process, port=port, log_file=log_file)
            if server._wait_until_ready(timeout):
                return server
            server.stop()
            failure = _tail(log_file)
        raise ServiceError(f"moto_server did not answer on {LOOPBACK}:\n{failure}")

    def _wait_until_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):
                    return True
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def fresh_bucket(self, name_hint: str = "store", prefix: str = "store/") -> S3Bucket:
        stem = re.sub(r"[^a-z0-9-]+", "-", name_hint.lower()).strip("-")[:40] or "store"
        bucket = f"{stem}-{next(self._buckets)}-{secrets.token_hex(3)}"
        s3_client(self.endpoint_url).create_bucket(Bucket=bucket)
        return S3Bucket(
            bucket=bucket,
            prefix=prefix,
            endpoint=self.endpoint,
            env={
                "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
                "AWS_REGION": S3_REGION,
                "AWS_ENDPOINT_URL": self.endpoint_url,
            },
        )
