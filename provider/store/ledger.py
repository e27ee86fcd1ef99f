"""The import ledger: each integration's windows, the CircleCI export jobs that fill them, the
claims that let one runner ask for a window's export, and the usage rows each load replaces."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import duckdb

from circlecost import csvload
from circlecost.csvload import LoadResult
from circlecost.store.common import (
    _affected,
    _from_db,
    _maybe_to_db,
    _require_integration,
    _required_from_db,
    _to_db,
    _utc_now,
)
from circlecost.store.connection import GUARD_LEDGER, StoreBase, _retried
from circlecost.store.errors import InvalidValueError, StoreConflictError, StoreNotFoundError
from circlecost.store.records import ExportJob, ImportWindow, WindowTask
from circlecost.store.schema import DAILY_FILL
from circlecost.windows import Window

# CircleCI refuses a usage-export window longer than this (both ends inclusive).
MAX_WINDOW: Final = timedelta(days=31)

_WINDOW_SELECT: Final = (
    "SELECT integration_id, window_start, window_end, state, rows, total_mismatch_rows, "
    "loaded_at, attempts, last_error, current_job_id FROM import_windows"
)
_JOB_SELECT: Final = (
    "SELECT job_id, integration_id, window_start, window_end, created_at, state, polls, "
    "last_polled_at, next_poll_at, download_completed, error_reason FROM export_jobs"
)


class LedgerMixin(StoreBase):
    """The import ledger: windows, export jobs, claims and usage rows."""

    @_retried
    def plan_windows(self, integration_id: str, windows: Iterable[Window]) -> list[Window]:
        """Adds the windows not yet in the ledger (keyed by start); returns the new ones."""
        given = list(windows)
        for window in given:
            _check_window(window)
        wanted = sorted(set(given))
        with self.transaction((GUARD_LEDGER,)) as con:
            _require_integration(con, integration_id)
            known = _window_starts(con, integration_id)
            new = [window for window in wanted if _to_db(window.start) not in known]
            for window in new:
                con.execute(
                    "INSERT INTO import_windows (integration_id, window_start, window_end) "
                    "VALUES (?, ?, ?)",
                    [integration_id, _to_db(window.start), _to_db(window.end)],
                )
            return new

    @_retried
    def reopen_window(self, integration_id: str, window: Window) -> None:
        """Plans a window again (daily refresh); its rows stay until a new load replaces them.

        A window whose export job is still in flight keeps it (and its bounds): a refresh that
        follows a crash continues that job instead of spending quota on a duplicate.
        """
        _check_window(window)
        with self.transaction((GUARD_LEDGER,)) as con:
            _require_integration(con, integration_id)
            start, end = _to_db(window.start), _to_db(window.end)
            state = _window_state(con, integration_id, start)
            if state is None:
                con.execute(
                    "INSERT INTO import_windows (integration_id, window_start, window_end) "
                    "VALUES (?, ?, ?)",
                    [integration_id, start, end],
                )
            elif state != "requested":
                con.execute(
                    "UPDATE import_windows SET window_end = ?, state = 'planned', attempts = 0, "
                    "last_error = NULL, current_job_id = NULL, claimed_by = NULL, "
                    "claimed_until = NULL WHERE integration_id = ? AND window_start = ?",
                    [end, integration_id, start],
                )

    def list_windows(self, integration_id: str) -> list[ImportWindow]:
        with self.reader() as con:
            rows = con.execute(
                f"{_WINDOW_SELECT} WHERE integration_id = ? ORDER BY window_start",
                [integration_id],
            ).fetchall()
        return [_window_from_row(row) for row in rows]

    def open_windows(self, integration_id: str) -> list[WindowTask]:
        """Windows still to load (planned or requested), oldest first, with their current job."""
        with self.reader() as con:
            rows = con.execute(
                "SELECT w.window_start, w.window_end, j.job_id, j.state, j.next_poll_at, "
                "w.attempts, j.error_reason FROM import_windows AS w "
                "LEFT JOIN export_jobs AS j ON j.job_id = w.current_job_id "
                "WHERE w.integration_id = ? AND w.state IN ('planned', 'requested') "
                "ORDER BY w.window_start",
                [integration_id],
            ).fetchall()
        return [
            WindowTask(
                Window(_required_from_db(start), _required_from_db(end)),
                job_id,
                job_state,
                _from_db(next_poll_at),
                int(attempts),
                error_reason,
            )
            for start, end, job_id, job_state, next_poll_at, attempts, error_reason in rows
        ]

    def window_counts(self, integration_id: str) -> dict[str, int]:
        """How many windows are loaded, open (planned or requested) and failed for good."""
        with self.reader() as con:
            rows = con.execute(
                "SELECT CASE WHEN state IN ('planned', 'requested') THEN 'open' ELSE state END, "
                "count(*) FROM import_windows WHERE integration_id = ? GROUP BY ALL",
                [integration_id],
            ).fetchall()
        counts = {"loaded": 0, "open": 0, "failed": 0}
        counts.update({str(state): int(count) for state, count in rows})
        return counts

    @_retried
    def claim_window(
        self,
        integration_id: str,
        window: Window,
        claimant: str,
        now: datetime,
        hold: timedelta,
        current_job_id: str | None,
        abandoned: Callable[[str], bool] = lambda _holder: False,
    ) -> datetime | None:
        """Claims the window for asking CircleCI for its export: None when `claimant` holds it
        now, else when to look again (another run holds it, or recorded a job since the caller
        read the ledger). Of two runners refreshing one integration only one may POST.
        `abandoned(holder)` says whether another holder is known to be gone (a killed process
        of this machine): its claim is taken over at once instead of when it runs out."""
        with self.transaction((GUARD_LEDGER,)) as con:
            row = con.execute(
                "SELECT claimed_by, claimed_until, current_job_id FROM import_windows "
                "WHERE integration_id = ? AND window_start = ?",
                [integration_id, _to_db(window.start)],
            ).fetchone()
            if row is None:
                raise StoreNotFoundError(
                    f"the window {window} of integration {integration_id} is not in the ledger",
                    hint="plan it with plan_windows first",
                )
            holder, until, job_id = row[0], _from_db(row[1]), row[2]
            if job_id != current_job_id:
                return now
            held = holder not in (None, claimant) and until is not None and until > now
            if held and not abandoned(str(holder)):
                return until
            con.execute(
                "UPDATE import_windows SET claimed_by = ?, claimed_until = ? "
                "WHERE integration_id = ? AND window_start = ?",
                [claimant, _to_db(now + hold), integration_id, _to_db(window.start)],
            )
            return None

    @_retried
    def release_window(self, integration_id: str, window: Window, claimant: str) -> None:
        """Gives up a claim that did not lead to an export job (no quota, CircleCI failed)."""
        with self.transaction((GUARD_LEDGER,)) as con:
            con.execute(
                "UPDATE import_windows SET claimed_by = NULL, claimed_until = NULL "
                "WHERE integration_id = ? AND window_start = ? AND claimed_by = ?",
                [integration_id, _to_db(window.start), claimant],
            )

    @_retried
    def record_job(
        self, integration_id: str, window: Window, job_id: str, created_at: datetime
    ) -> None:
        """Writes a new CircleCI export job to the ledger; call it before polling the job."""
        with self.transaction((GUARD_LEDGER,)) as con:
            _require_integration(con, integration_id)
            start, end = _to_db(window.start), _to_db(window.end)
            known = con.execute(
                "SELECT count(*) FROM export_jobs WHERE job_id = ?", [job_id]
            ).fetchone()
            if known != (0,):
                raise StoreConflictError(
                    f"the export job {job_id} is in the ledger of {self.name} already",
                    hint="record each CircleCI export job once",
                )
            con.execute(
                "INSERT INTO export_jobs (job_id, integration_id, window_start, window_end, "
                "created_at) VALUES (?, ?, ?, ?, ?)",
                [job_id, integration_id, start, end, _to_db(created_at)],
            )
            if _window_state(con, integration_id, start) is None:
                con.execute(
                    "INSERT INTO import_windows (integration_id, window_start, window_end, "
                    "state, attempts, current_job_id) VALUES (?, ?, ?, 'requested', 1, ?)",
                    [integration_id, start, end, job_id],
                )
            else:
                con.execute(
                    "UPDATE import_windows SET state = 'requested', window_end = ?, "
                    "attempts = attempts + 1, current_job_id = ?, claimed_by = NULL, "
                    "claimed_until = NULL WHERE integration_id = ? AND window_start = ?",
                    [end, job_id, integration_id, start],
                )

    @_retried
    def update_job(
        self,
        job_id: str,
        state: str,
        polled_at: datetime,
        next_poll_at: datetime | None,
        error_reason: str | None = None,
    ) -> None:
        """Records what CircleCI said about a job (or that it was loaded) and when to look again."""
        with self.transaction((GUARD_LEDGER,)) as con:
            updated = con.execute(
                "UPDATE export_jobs SET state = ?, "
                "polls = polls + CASE WHEN ? > created_at THEN 1 ELSE 0 END, "
                "last_polled_at = ?, next_poll_at = ?, "
                "error_reason = coalesce(?, error_reason), "
                "download_completed = download_completed OR ? = 'loaded' "
                "WHERE job_id = ?",
                [
                    state,
                    _to_db(polled_at),
                    _to_db(polled_at),
                    _maybe_to_db(next_poll_at),
                    error_reason,
                    state,
                    job_id,
                ],
            ).fetchall()
            if _affected(updated) == 0:
                raise StoreNotFoundError(
                    f"the export job {job_id} is not in the ledger of {self.name}",
                    hint="record it with record_job before polling it",
                )

    def get_job(self, job_id: str) -> ExportJob | None:
        with self.reader() as con:
            row = con.execute(f"{_JOB_SELECT} WHERE job_id = ?", [job_id]).fetchone()
        return None if row is None else _job_from_row(row)

    def list_jobs(self, integration_id: str) -> list[ExportJob]:
        with self.reader() as con:
            rows = con.execute(
                f"{_JOB_SELECT} WHERE integration_id = ? ORDER BY created_at, job_id",
                [integration_id],
            ).fetchall()
        return [_job_from_row(row) for row in rows]

    @_retried
    def fail_window(self, integration_id: str, window: Window, error: str, final: bool) -> None:
        """Notes why a window could not be loaded; `final` stops further attempts."""
        with self.transaction((GUARD_LEDGER,)) as con:
            con.execute(
                "UPDATE import_windows SET last_error = ?, "
                "state = CASE WHEN ? THEN 'failed' ELSE state END "
                "WHERE integration_id = ? AND window_start = ?",
                [error, final, integration_id, _to_db(window.start)],
            )

    def load_window(
        self, integration_id: str, window: Window, job_id: str | None, part_files: Sequence[Path]
    ) -> LoadResult:
        """Replaces the window's usage rows with the parts' rows and marks it loaded, atomically."""
        return self.replace_window_rows(integration_id, window, job_id, part_files)

    @_retried
    def replace_window_rows(
        self,
        integration_id: str,
        window: Window,
        export_job_id: str | None,
        part_files: Sequence[Path],
    ) -> LoadResult:
        """In one transaction: delete the window's rows, load every part, mark the window loaded.

        A failure anywhere (a bad line, a full disk, a crash) leaves the previous rows intact.
        """
        target = csvload.Target(
            integration_id, _to_db(window.start), export_job_id, _to_db(_utc_now())
        )
        with self.transaction((GUARD_LEDGER,)) as con:
            _require_integration(con, integration_id)
            csvload.tune_for_load(con, "shared" if self.shared is not None else "embedded")
            for table in ("usage", "usage_daily"):
                con.execute(
                    f"DELETE FROM {table} WHERE integration_id = ? AND window_start = ?",
                    [integration_id, target.window_start],
                )
            self.crash_hook("mid_insert")
            result = csvload.load_parts(con, list(part_files), target)
            con.execute(
                DAILY_FILL.format(where="integration_id = ? AND window_start = ?"),
                [integration_id, target.window_start],
            )
            self.crash_hook("before_mark_loaded")
            _mark_loaded(con, integration_id, window, export_job_id, result, target.loaded_at)
            return result

    @_retried
    def rebuild_daily_usage(self) -> None:
        """Rolls up every usage row again. The loader keeps the rollup up to date by itself;
        this is for rows written around it (benchmarks and tests that insert usage directly)."""
        with self.transaction((GUARD_LEDGER,)) as con:
            con.execute("DELETE FROM usage_daily")
            con.execute(DAILY_FILL.format(where="TRUE"))


def _window_state(
    con: duckdb.DuckDBPyConnection, integration_id: str, start: datetime
) -> str | None:
    row = con.execute(
        "SELECT state FROM import_windows WHERE integration_id = ? AND window_start = ?",
        [integration_id, start],
    ).fetchone()
    return None if row is None else str(row[0])


def _check_window(window: Window) -> None:
    """A window CircleCI could export: ordered, timezone-aware bounds at most 31 days apart."""
    if window.start.tzinfo is None or window.end.tzinfo is None:
        raise InvalidValueError(
            f"window {window.start.isoformat()}..{window.end.isoformat()}: its bounds must be "
            "timezone-aware (UTC) datetimes",
            hint="build windows with circlecost.windows (backfill_windows, refresh_windows)",
        )
    if window.end < window.start:
        raise InvalidValueError(
            f"window {window}: it ends ({window.end.isoformat()}) before it starts "
            f"({window.start.isoformat()})",
            hint="build windows with circlecost.windows (backfill_windows, refresh_windows)",
        )
    if window.end - window.start > MAX_WINDOW:
        raise InvalidValueError(
            f"window {window}: it spans more than {MAX_WINDOW.days} days, longer than CircleCI "
            "exports",
            hint="split it by calendar month (circlecost.windows.split_by_month)",
        )


def _window_starts(con: duckdb.DuckDBPyConnection, integration_id: str) -> set[datetime]:
    rows = con.execute(
        "SELECT window_start FROM import_windows WHERE integration_id = ?", [integration_id]
    ).fetchall()
    return {start for (start,) in rows}


def _window_from_row(row: tuple[Any, ...]) -> ImportWindow:
    integration_id, start, end, state, rows, mismatches, loaded_at, attempts, error, job = row
    return ImportWindow(
        integration_id,
        Window(_required_from_db(start), _required_from_db(end)),
        state,
        rows,
        mismatches,
        _from_db(loaded_at),
        int(attempts),
        error,
        job,
    )


def _job_from_row(row: tuple[Any, ...]) -> ExportJob:
    (job_id, integration_id, start, end, created, state, polls, polled, next_poll, done, reason) = (
        row
    )
    return ExportJob(
        job_id,
        integration_id,
        Window(_required_from_db(start), _required_from_db(end)),
        _required_from_db(created),
        state,
        int(polls),
        _from_db(polled),
        _from_db(next_poll),
        bool(done),
        reason,
    )


def _mark_loaded(
    con: duckdb.DuckDBPyConnection,
    integration_id: str,
    window: Window,
    job_id: str | None,
    result: LoadResult,
    loaded_at: datetime,
) -> None:
    start = _to_db(window.start)
    if _window_state(con, integration_id, start) is None:
        con.execute(
            "INSERT INTO import_windows (integration_id, window_start, window_end) "
            "VALUES (?, ?, ?)",
            [integration_id, start, _to_db(window.end)],
        )
    con.execute(
        "UPDATE import_windows SET state = 'loaded', window_end = ?, rows = ?, "
        "total_mismatch_rows = ?, loaded_at = ?, last_error = NULL, current_job_id = ?, "
        "claimed_by = NULL, claimed_until = NULL WHERE integration_id = ? AND window_start = ?",
        [
            _to_db(window.end),
            result.rows,
            result.total_mismatch_rows,
            loaded_at,
            job_id,
            integration_id,
            start,
        ],
    )
    if job_id is not None:
        con.execute("UPDATE export_jobs SET download_completed = true WHERE job_id = ?", [job_id])
