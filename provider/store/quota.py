"""Quota: the requests each organization made of CircleCI's API in the last hour, and the
blocks CircleCI imposed (429), shared by every runner of the store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final

import duckdb

from circlecost.store.common import _from_db, _to_db
from circlecost.store.connection import GUARD_QUOTA, StoreBase, _retried

QUOTA_KINDS: Final = ("POST", "GET")
QUOTA_PERIOD: Final = timedelta(hours=1)
QUOTA_HISTORY: Final = timedelta(days=7)


class QuotaMixin(StoreBase):
    """CircleCI request counters and blocks."""

    @_retried
    def record_request(self, org_id: str, kind: str, at: datetime) -> None:
        with self.transaction((GUARD_QUOTA,)) as con:
            _insert_request(con, org_id, kind, at)

    def count_requests(self, org_id: str, kind: str, since: datetime) -> int:
        with self.reader() as con:
            return _count_requests(con, org_id, kind, since)

    def oldest_request_since(self, org_id: str, kind: str, since: datetime) -> datetime | None:
        with self.reader() as con:
            return _oldest_request_since(con, org_id, kind, since)

    @_retried
    def take_request_slot(
        self, org_id: str, kind: str, now: datetime, per_hour: int
    ) -> datetime | None:
        """Counts a request now if the hourly budget allows it (None); else when a slot frees."""
        with self.transaction((GUARD_QUOTA,)) as con:
            blocked_until = _blocked_until(con, org_id, now)
            if blocked_until is not None:
                return blocked_until
            since = now - QUOTA_PERIOD
            if _count_requests(con, org_id, kind, since) < per_hour:
                _insert_request(con, org_id, kind, now)
                _forget_old_requests(con, now)
                return None
            oldest = _oldest_request_since(con, org_id, kind, since)
            return (oldest or now) + QUOTA_PERIOD

    @_retried
    def block_requests(self, org_id: str, until: datetime) -> None:
        """CircleCI said 429: no request for this organization before `until`."""
        with self.transaction((GUARD_QUOTA,)) as con:
            con.execute("INSERT INTO quota_blocks VALUES (?, ?)", [org_id, _to_db(until)])


def _insert_request(con: duckdb.DuckDBPyConnection, org_id: str, kind: str, at: datetime) -> None:
    if kind not in QUOTA_KINDS:
        raise ValueError(f"quota kind must be one of {QUOTA_KINDS}, not {kind!r}")
    con.execute("INSERT INTO quota_requests VALUES (?, ?, ?)", [org_id, kind, _to_db(at)])


def _count_requests(con: duckdb.DuckDBPyConnection, org_id: str, kind: str, since: datetime) -> int:
    row = con.execute(
        "SELECT count(*) FROM quota_requests WHERE org_id = ? AND kind = ? AND requested_at > ?",
        [org_id, kind, _to_db(since)],
    ).fetchone()
    return 0 if row is None else int(row[0])


def _oldest_request_since(
    con: duckdb.DuckDBPyConnection, org_id: str, kind: str, since: datetime
) -> datetime | None:
    row = con.execute(
        "SELECT min(requested_at) FROM quota_requests "
        "WHERE org_id = ? AND kind = ? AND requested_at > ?",
        [org_id, kind, _to_db(since)],
    ).fetchone()
    return None if row is None else _from_db(row[0])


def _blocked_until(con: duckdb.DuckDBPyConnection, org_id: str, now: datetime) -> datetime | None:
    row = con.execute(
        "SELECT max(until) FROM quota_blocks WHERE org_id = ? AND until > ?",
        [org_id, _to_db(now)],
    ).fetchone()
    return None if row is None else _from_db(row[0])


def _forget_old_requests(con: duckdb.DuckDBPyConnection, now: datetime) -> None:
    horizon = _to_db(now - QUOTA_HISTORY)
    con.execute("DELETE FROM quota_requests WHERE requested_at < ?", [horizon])
    con.execute("DELETE FROM quota_blocks WHERE until < ?", [horizon])
