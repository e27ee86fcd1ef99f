"""Where a cost store lives and how circlecost connects to it.

Two engines, one schema and one code path above them:

- **embedded**: one DuckDB file on this machine (the default, and what `make demo` uses);
- **shared**: a DuckLake store, its catalog in PostgreSQL and its data as Parquet files in a
  directory or an S3-compatible bucket, so that CI runners that come and go share one store.

A shared store is named `ducklake:postgres:<libpq connection string>`. Passwords never sit in
that string: libpq reads `PGPASSWORD`, `PGPASSFILE` and `PGSERVICEFILE` itself, and S3 keys come
from the standard `AWS_*` variables. DuckLake's extensions come from pinned PyPI wheels and are
loaded from their files: nothing is ever downloaded at run time.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

import duckdb

from circlecost.errors import CirclecostError

__all__ = [
    "DUCKDB_VERSION",
    "LAKE_PREFIX",
    "CatalogNotCreated",
    "SharedStore",
    "StoreUnreachableError",
    "is_commit_conflict",
    "lake_connection",
    "parse_location",
    "redact",
]

# The DuckDB whose extension wheels are pinned in pyproject.toml: DuckDB refuses extension files
# built for any other version, 1.5.6 included.
DUCKDB_VERSION: Final = "1.5.5"
LAKE_PREFIX: Final = "ducklake:postgres:"
LAKE_ALIAS: Final = "circlecost_lake"
# Extension name -> the PyPI distribution's import package that carries its file.
_EXTENSION_PACKAGES: Final = {
    "ducklake": "duckdb_extension_ducklake",
    "postgres_scanner": "duckdb_extension_postgres_scanner",
    "httpfs": "duckdb_extension_httpfs",
}
_S3_VARIABLES: Final = ("AWS_ACCESS_KEY_ID", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")
_PASSWORD_RE: Final = re.compile(r"(password\s*=\s*)('[^']*'|\S+)", re.IGNORECASE)
_URL_PASSWORD_RE: Final = re.compile(r"(postgres(?:ql)?://[^:/@\s]+:)[^@\s]+@")


class StoreUnreachableError(CirclecostError):
    """The shared store's catalog or data could not be reached or used."""


class CatalogNotCreated(StoreUnreachableError):
    """The catalog database holds no DuckLake (and no data path was given to make one)."""


@dataclass(frozen=True)
class SharedStore:
    """A DuckLake store: the libpq connection string of its catalog and where its data lives."""

    catalog: str
    data_path: str | None = None

    @property
    def name(self) -> str:
        """How messages name the store: its catalog, without a password."""
        return redact(LAKE_PREFIX + self.catalog)

    @property
    def on_s3(self) -> bool:
        return (self.data_path or "").startswith("s3://")

    def __str__(self) -> str:
        return self.name


def parse_location(
    value: str | os.PathLike[str], data_path: str | None = None
) -> Path | SharedStore:
    """A store setting (`circlecost:store`, CIRCLECOST_STORE, --store) as an embedded file path
    or a shared store."""
    text = os.fspath(value)
    if text.startswith("ducklake:"):
        if not text.startswith(LAKE_PREFIX):
            raise CirclecostError(
                f"the store {redact(text)!r} names a DuckLake catalog circlecost cannot use",
                hint="a shared store is `ducklake:postgres:<libpq connection string>`, e.g. "
                "ducklake:postgres:host=db.internal dbname=circlecost user=ci",
            )
        catalog = text[len(LAKE_PREFIX) :].strip()
        if not catalog:
            raise CirclecostError(
                "the store `ducklake:postgres:` has no connection string",
                hint="add the PostgreSQL catalog's libpq string, e.g. "
                "ducklake:postgres:host=db.internal dbname=circlecost user=ci",
            )
        if _PASSWORD_RE.search(catalog) or _URL_PASSWORD_RE.search(catalog):
            raise CirclecostError(
                f"the store {redact(text)!r} carries a password in plain configuration",
                hint="remove it and set PGPASSWORD (a CI secret) or use a PGPASSFILE/PGSERVICEFILE",
            )
        return SharedStore(catalog, _clean_data_path(data_path))
    return Path(text).expanduser()


def _clean_data_path(data_path: str | None) -> str | None:
    if not data_path:
        return None
    if data_path.startswith("s3://"):
        return data_path if data_path.endswith("/") else data_path + "/"
    folder = Path(data_path).expanduser().absolute()
    return str(folder) + "/"


def redact(text: str) -> str:
    """`text` with any password in a libpq string or URL replaced by ***."""
    text = _PASSWORD_RE.sub(r"\1***", text)
    return _URL_PASSWORD_RE.sub(r"\1***@", text)


def is_commit_conflict(err: duckdb.Error) -> bool:
    """DuckLake's optimistic concurrency: another transaction changed the same table first."""
    return isinstance(err, duckdb.TransactionException) and "conflict" in str(err).lower()


# --- connections to a shared store ---------------------------------------------------------------

_instances: dict[SharedStore, duckdb.DuckDBPyConnection] = {}
_instances_lock = threading.Lock()


@contextlib.contextmanager
def lake_connection(store: SharedStore) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of its own (own transaction) to the shared store, its catalog in use.

    Attaching costs a PostgreSQL round trip and loading three extensions, so one in-memory
    DuckDB per store and process stays attached; each caller gets a cursor of its own.
    """
    database = _attached(store)
    cursor = database.cursor()
    try:
        cursor.execute(f"USE {LAKE_ALIAS}")
        yield cursor
    except (duckdb.IOException, duckdb.ConnectionException, duckdb.FatalException):
        _forget(store)
        raise
    finally:
        with contextlib.suppress(duckdb.Error):
            cursor.close()


def _attached(store: SharedStore) -> duckdb.DuckDBPyConnection:
    with _instances_lock:
        database = _instances.get(store)
        if database is None:
            database = _attach(store)
            _instances[store] = database
        return database


def _forget(store: SharedStore) -> None:
    with _instances_lock:
        database = _instances.pop(store, None)
    if database is not None:
        with contextlib.suppress(duckdb.Error):
            database.close()


def _attach(store: SharedStore) -> duckdb.DuckDBPyConnection:
    _require_pinned_duckdb()
    database = duckdb.connect(
        config={"autoinstall_known_extensions": "false", "autoload_known_extensions": "false"}
    )
    try:
        # httpfs always: a reader does not know the data path, which the catalog records.
        for name in ("postgres_scanner", "ducklake", "httpfs"):
            database.execute(f"LOAD {sql_string(str(extension_file(name)))}")
        if store.on_s3 or any(os.environ.get(name) for name in _S3_VARIABLES):
            _create_s3_secret(database)
        options = f" (DATA_PATH {sql_string(store.data_path)})" if store.data_path else ""
        database.execute(
            f"ATTACH {sql_string(LAKE_PREFIX + store.catalog)} AS {LAKE_ALIAS}{options}"
        )
    except duckdb.Error as err:
        database.close()
        raise unreachable(store, err) from err
    return database


def extension_file(name: str) -> Path:
    """The extension's file inside its pinned PyPI wheel."""
    package = _EXTENSION_PACKAGES[name]
    spec = importlib.util.find_spec(package)
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        candidate = Path(folder) / "extensions" / f"v{DUCKDB_VERSION}" / f"{name}.duckdb_extension"
        if candidate.is_file():
            return candidate
    distribution = package.replace("_", "-")
    raise StoreUnreachableError(
        f"the DuckDB extension {name} for DuckDB {DUCKDB_VERSION} is not installed",
        hint=f"pip install {distribution}=={DUCKDB_VERSION} (circlecost never downloads "
        "extensions at run time); `make bootstrap` installs it",
    )


def _require_pinned_duckdb() -> None:
    if duckdb.__version__ != DUCKDB_VERSION:
        raise StoreUnreachableError(
            f"a shared store needs DuckDB {DUCKDB_VERSION}; this environment has "
            f"{duckdb.__version__}, which refuses the pinned DuckLake extension files",
            hint=f"pip install duckdb=={DUCKDB_VERSION}",
        )


def _create_s3_secret(database: duckdb.DuckDBPyConnection) -> None:
    """S3 credentials from the standard AWS_* variables; an endpoint for S3-compatible storage."""
    env = os.environ
    options = ["TYPE s3", "PROVIDER config"]
    for option, variable in (
        ("KEY_ID", "AWS_ACCESS_KEY_ID"),
        ("SECRET", "AWS_SECRET_ACCESS_KEY"),
        ("SESSION_TOKEN", "AWS_SESSION_TOKEN"),
    ):
        if env.get(variable):
            options.append(f"{option} {sql_string(env[variable])}")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options.append(f"REGION {sql_string(region)}")
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options += [
            f"ENDPOINT {sql_string(parts.netloc)}",
            "URL_STYLE 'path'",
            f"USE_SSL {'false' if parts.scheme == 'http' else 'true'}",
        ]
    database.execute(f"CREATE SECRET circlecost_s3 ({', '.join(options)})")


def unreachable(store: SharedStore, err: duckdb.Error) -> StoreUnreachableError:
    """What went wrong reaching a shared store, in words, with what to do; never a password."""
    text = redact(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
    lowered = str(err).lower()
    if "data_path is not set" in lowered:
        return CatalogNotCreated(
            f"there is no circlecost store in {store.name}",
            hint="create it once with `circlecost store init --owner NAME --data-path PATH` "
            "(PATH: a directory or s3://bucket/prefix/ for its data)",
        )
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return StoreUnreachableError(
            f"PostgreSQL refused the login to the catalog of {store.name} ({text})",
            hint="check the user in the connection string and PGPASSWORD (or PGPASSFILE)",
        )
    if "does not exist" in lowered and "database" in lowered:
        return StoreUnreachableError(
            f"the catalog database of {store.name} does not exist ({text})",
            hint="create it (createdb NAME), then run `circlecost store init --owner NAME`",
        )
    if "connection refused" in lowered or "could not connect" in lowered or "timeout" in lowered:
        return StoreUnreachableError(
            f"cannot reach the PostgreSQL catalog of {store.name} ({text})",
            hint="check host and port in the connection string and that the server is up",
        )
    if "could not translate host name" in lowered:
        return StoreUnreachableError(
            f"the catalog host of {store.name} is unknown ({text})",
            hint="check the host in the connection string",
        )
    if store.data_path and ("permission denied" in lowered or "cannot open" in lowered):
        return StoreUnreachableError(
            f"the data path {store.data_path} of {store.name} is not writable ({text})",
            hint="give the CI user write access to it, or set CIRCLECOST_STORE_DATA_PATH",
        )
    if store.on_s3 and ("http" in lowered or "s3" in lowered):
        return StoreUnreachableError(
            f"the data path {store.data_path} of {store.name} cannot be used ({text})",
            hint="check the bucket and the AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_REGION and AWS_ENDPOINT_URL variables",
        )
    return StoreUnreachableError(
        f"the shared store {store.name} failed: {text}",
        hint="check the catalog connection string and the data path, then retry",
    )


def sql_string(text: str | None) -> str:
    """`text` as a SQL string literal (None as ''), for the places DuckDB takes no parameter:
    ATTACH, SET, COPY's target."""
    return "'" + (text or "").replace("'", "''") + "'"
