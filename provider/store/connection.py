"""Connections and transactions: an embedded DuckDB file or a shared DuckLake.

On an embedded store, writers take DuckDB's file lock; one that finds it held retries for
`lock_timeout` seconds, then raises `StoreLockedError` naming the process that holds it, which each
writer records in `<store>.writer.json`. A shared store (see `circlecost.engine`) has no lock:
DuckLake commits optimistically, and a transaction that lost a race to another runner is run
again (`_retried`). Because DuckLake sees no conflict between two inserts, every write
transaction first bumps a guard row (`ALL_GUARDS`) of each aggregate it changes, which turns such
races into conflicts too: two runners never store a window twice or take more quota than there
is. `duckdb.Error` is translated into the store's errors in one place, `_translated`, with a
hint that says what to do.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Final, ParamSpec, TypeVar

import duckdb

from circlecost.engine import (
    CatalogNotCreated,
    SharedStore,
    is_commit_conflict,
    lake_connection,
    parse_location,
)
from circlecost.engine import unreachable as lake_unreachable
from circlecost.faultpoints import CrashHook, never_crash
from circlecost.store.common import _to_db, _utc_now
from circlecost.store.errors import (
    StoreConflictError,
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreNotFoundError,
    StoreOutdatedError,
)

P = ParamSpec("P")
R = TypeVar("R")

LOCK_RETRY_SECONDS: Final = 0.1

# Guard tables, one per aggregate. DuckLake detects conflicts per table, so a transaction that
# bumps the guard of an aggregate conflicts with every other transaction that does, and one of
# the two runs again: that makes "read, check, insert" safe across runners (an empty window
# loaded twice, a quota slot taken twice, an organization integrated twice).
GUARD_CATALOG: Final = "guard_catalog"  # integrations, prices, workspaces, bindings, roles, audit
GUARD_LEDGER: Final = "guard_ledger"  # import windows, export jobs and usage rows
GUARD_QUOTA: Final = "guard_quota"  # CircleCI request counters and blocks
ALL_GUARDS: Final = (GUARD_CATALOG, GUARD_LEDGER, GUARD_QUOTA)


# --- the writer lock and who holds it -----------------------------------------------------------

_LOCK_MESSAGE_RE: Final = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")
_process_state = threading.Lock()
_writers: dict[Path, int] = {}
_umask_users = 0
_saved_umask = 0


_path_locks: dict[Path, threading.RLock] = {}


def _process_writer_lock(path: Path) -> threading.RLock:
    with _process_state:
        return _path_locks.setdefault(path, threading.RLock())


def _is_lock_error(err: duckdb.Error) -> bool:
    return "Could not set lock" in str(err) or "Conflicting lock" in str(err)


@contextlib.contextmanager
def _private_files() -> Iterator[None]:
    """Files created meanwhile (the store, its WAL, spill files) are readable by the owner only.

    The umask is per process, so nested and concurrent writers share one saved value.
    """
    global _umask_users, _saved_umask
    with _process_state:
        if _umask_users == 0:
            _saved_umask = os.umask(0o077)
        _umask_users += 1
    try:
        yield
    finally:
        with _process_state:
            _umask_users -= 1
            if _umask_users == 0:
                os.umask(_saved_umask)


def _holder_file(path: Path) -> Path:
    return path.with_name(path.name + ".writer.json")


@contextlib.contextmanager
def _holding(path: Path, kind: str) -> Iterator[None]:
    """Records this process as the writer in `<store>.writer.json` while it holds the lock."""
    with _process_state:
        first = _writers.get(path, 0) == 0
        _writers[path] = _writers.get(path, 0) + 1
    if first:
        _write_holder(path, kind)
    try:
        yield
    finally:
        with _process_state:
            _writers[path] -= 1
            last = _writers[path] == 0
        if last:
            _remove_holder(path)


def _write_holder(path: Path, kind: str) -> None:
    record = {"pid": os.getpid(), "kind": kind, "started_at": _utc_now().isoformat()}
    temporary = _holder_file(path).with_suffix(f".{os.getpid()}.tmp")
    with contextlib.suppress(OSError):
        temporary.write_text(json.dumps(record), encoding="utf-8")
        temporary.replace(_holder_file(path))


def _remove_holder(path: Path) -> None:
    holder = _read_holder(path)
    if holder is not None and holder.get("pid") == os.getpid():
        with contextlib.suppress(OSError):
            _holder_file(path).unlink()


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(_holder_file(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _in_process_writer(path: Path) -> bool:
    with _process_state:
        return _writers.get(path, 0) > 0


def _locked_error(path: Path, err: duckdb.Error, waited: float) -> StoreLockedError:
    match = _LOCK_MESSAGE_RE.search(str(err))
    lock_pid = int(match.group(2)) if match else None
    holder = _read_holder(path)
    if holder is not None and (lock_pid is None or holder.get("pid") == lock_pid):
        since = str(holder.get("started_at", ""))[11:19]
        who = f"`{holder.get('kind')}` (pid {holder.get('pid')}, since {since}Z)"
    elif lock_pid is not None:
        who = f"another process (pid {lock_pid}, {match.group(1) if match else 'unknown'})"
    else:
        who = "another process"
    return StoreLockedError(
        f"the store {path} is being written by {who}; waited {waited:.0f} s for it",
        hint="wait for it to finish or stop it, then retry",
    )


# --- errors at the boundary ---------------------------------------------------------------------


def _translated(path: str, err: duckdb.Error) -> StoreError:
    """The one place where DuckDB's errors become circlecost's, each with what to do next."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if "not a valid DuckDB database" in text or "corrupt" in text.lower():
        return StoreCorruptError(
            f"the store {path} is damaged or not a circlecost store ({text})",
            hint="restore it from a backup, or move it aside and run `pulumi up` "
            "to create a new one (costs are then imported again)",
        )
    if isinstance(err, duckdb.ConstraintException):
        return StoreConflictError(
            f"the store {path} refused a change that breaks one of its rules ({text})",
            hint="check that the integration, workspace or binding does not exist already",
        )
    if isinstance(err, duckdb.CatalogException):
        return StoreOutdatedError(
            f"the store {path} lacks part of its schema ({text})",
            hint="run `circlecost sync` or `pulumi up` once to upgrade it",
        )
    return StoreError(
        f"the store {path} failed: {text}",
        hint="retry; if it fails again, check the disk (space, permissions) and report it",
    )


# --- runs that lose a race on a shared store ---------------------------------------------------

# A transaction that lost a race runs again after a random pause that grows to CONFLICT_MAX_DELAY,
# for up to CONFLICT_BUDGET seconds: a long window load can lose to many short transactions.
CONFLICT_BUDGET: Final = 180.0
CONFLICT_FIRST_DELAY: Final = 0.02
CONFLICT_MAX_DELAY: Final = 2.0
# How many transactions lost a race and ran again, in this process (the concurrency test prints it).
# Read it here: it lives in this module only, as a re-exported int would be a stale copy.
conflict_retries = 0


class _CommitConflict(Exception):
    """Another runner committed a change to the same aggregate first; run the transaction again."""


def _retried(method: Callable[P, R]) -> Callable[P, R]:
    """Runs a Store method again (with a jittered, growing pause) when its transaction lost a
    race to another runner; after CONFLICT_BUDGET seconds of tries, raises StoreConflictError. The
    method must do nothing outside its one transaction that may not be done twice."""

    @functools.wraps(method)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        global conflict_retries
        delay = CONFLICT_FIRST_DELAY
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return method(*args, **kwargs)
            except _CommitConflict as conflict:
                waited = time.monotonic() - started
                if waited >= CONFLICT_BUDGET:
                    raise StoreConflictError(
                        f"{method.__name__} lost {attempt} races in {waited:.0f} s to other "
                        "runners writing the same store",
                        hint="retry; if it keeps happening, fewer runners should refresh at once",
                    ) from conflict
                with _process_state:
                    conflict_retries += 1
                time.sleep(random.uniform(delay / 2, delay))
                delay = min(delay * 2, CONFLICT_MAX_DELAY)

    return run


def _schema_version(con: duckdb.DuckDBPyConnection) -> int:
    exists = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE table_name = 'schema_version' AND database_name = current_database()"
    ).fetchone()
    if exists is None or exists[0] == 0:
        return 0
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


# --- the store's base -----------------------------------------------------------------------------


class StoreBase:
    """A store's settings and its connections, on which each part of `Store` builds. Holds
    only its settings, never a connection."""

    def __init__(
        self,
        location: str | os.PathLike[str] | SharedStore,
        writer_kind: str = "circlecost",
        lock_timeout: float = 10.0,
        *,
        data_path: str | None = None,
        crash_hook: CrashHook = never_crash,
    ) -> None:
        where = (
            location if isinstance(location, SharedStore) else parse_location(location, data_path)
        )
        self.shared: SharedStore | None = where if isinstance(where, SharedStore) else None
        self._path = None if isinstance(where, SharedStore) else where.absolute()
        self.writer_kind = writer_kind
        self.lock_timeout = lock_timeout
        # Called at the named points of a load (circlecost.faultpoints); kills the process there
        # in the fault suite, does nothing elsewhere.
        self.crash_hook = crash_hook

    def __repr__(self) -> str:
        return f"Store({self.name!r}, writer_kind={self.writer_kind!r})"

    @property
    def path(self) -> Path:
        """The file of an embedded store."""
        if self._path is None:
            raise StoreError(
                f"the shared store {self.name} has no file",
                hint="copy it to a file with `circlecost store copy` to work on one",
            )
        return self._path

    @property
    def location(self) -> Path | SharedStore:
        """What `Store(...)` takes to open this store again (in another process, say)."""
        return self.shared if self.shared is not None else self.path

    @property
    def name(self) -> str:
        """How messages name this store: its file, or a shared store's catalog (no password)."""
        return self.shared.name if self.shared is not None else str(self._path)

    def exists(self) -> bool:
        """Whether the store has been created (a shared store: initialised by `store init`)."""
        if self.shared is None:
            return self.path.exists()
        try:
            with self.reader() as con:
                return _schema_version(con) > 0
        except CatalogNotCreated:
            return False

    # --- connections and transactions ----------------------------------------------------------

    @contextlib.contextmanager
    def transaction(
        self, guards: Sequence[str] = ALL_GUARDS
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction: committed if the block succeeds, rolled back on any error.

        `guards` names the aggregates it changes (all by default). On a shared store, losing a
        race to another runner raises `_CommitConflict`, which `_retried` methods run again.
        """
        with self._writer() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                # An embedded store has one writer at a time (its file lock): no races to guard.
                for guard in guards if self.shared is not None else ():
                    con.execute(
                        f"UPDATE {guard} SET version = version + 1, touched_at = ?",
                        [_to_db(_utc_now())],
                    )
                yield con
                con.commit()
            except BaseException as err:
                with contextlib.suppress(duckdb.Error):
                    con.rollback()
                if self.shared is not None and isinstance(err, duckdb.Error):
                    if is_commit_conflict(err):
                        raise _CommitConflict(str(err)) from err
                raise

    @contextlib.contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for reports; it sees only committed data."""
        if self.shared is not None:
            with self._lake() as con:
                yield con
            return
        if not self.path.exists():
            raise StoreNotFoundError(
                f"there is no store at {self.path}",
                hint="run `pulumi up` (or `circlecost sync`) to create and fill it",
            )
        try:
            # DuckDB refuses a read-only and a read-write connection to one file in one
            # process at once, so readers and writers of this process take turns; inside a
            # writer (same thread) the reader shares its read-write configuration.
            lock = _process_writer_lock(self.path)
            lock.acquire()
            try:
                con = self._connect(read_only=not _in_process_writer(self.path))
            except BaseException:
                lock.release()
                raise
            try:
                yield con
            finally:
                con.close()
                lock.release()
        except duckdb.Error as err:
            raise _translated(self.name, err) from err

    @contextlib.contextmanager
    def _writer(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self.shared is not None:
            # Threads of one process take turns (Pulumi runs provider calls in parallel):
            # they would only conflict with each other. Other runners are DuckLake's business.
            with _process_writer_lock(Path(self.shared.name)), self._lake() as con:
                yield con
            return
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(
                f"cannot create the folder of the store {self.path}: {err.strerror}",
                hint="choose a writable path with `pulumi config set circlecost:store PATH`",
            ) from err
        try:
            # One writer at a time within this process too: Pulumi runs provider calls in
            # parallel threads, and concurrent DuckDB transactions would conflict.
            with _process_writer_lock(self.path), _private_files():
                con = self._connect(read_only=False)
                try:
                    with _holding(self.path, self.writer_kind):
                        yield con
                finally:
                    con.close()
        except duckdb.Error as err:
            raise _translated(self.name, err) from err

    @contextlib.contextmanager
    def _lake(self) -> Iterator[duckdb.DuckDBPyConnection]:
        assert self.shared is not None
        try:
            with lake_connection(self.shared) as con:
                yield con
        except duckdb.Error as err:
            if is_commit_conflict(err):
                raise
            if isinstance(err, duckdb.CatalogException) and not self._initialised():
                raise self.not_initialised() from err
            if isinstance(
                err, duckdb.IOException | duckdb.ConnectionException | duckdb.HTTPException
            ):
                raise lake_unreachable(self.shared, err) from err
            raise _translated(self.name, err) from err

    def _initialised(self) -> bool:
        assert self.shared is not None
        with contextlib.suppress(duckdb.Error), lake_connection(self.shared) as con:
            return _schema_version(con) > 0
        return True  # cannot tell: let the original error speak

    def not_initialised(self) -> StoreNotFoundError:
        return StoreNotFoundError(
            f"there is no circlecost store in {self.name}",
            hint="create it once with `circlecost store init --owner NAME`, which names its "
            "first Organization Owner",
        )

    def _connect(self, read_only: bool) -> duckdb.DuckDBPyConnection:
        started = time.monotonic()
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as err:
                waited = time.monotonic() - started
                if not _is_lock_error(err):
                    raise
                if waited >= self.lock_timeout:
                    raise _locked_error(self.path, err, waited) from err
                time.sleep(min(LOCK_RETRY_SECONDS, max(self.lock_timeout - waited, 0.01)))
