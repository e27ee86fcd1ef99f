"""What the fault suite compares and how it drives circlecost from outside.

- `served` / `stored`: rows and credits the emulator serves for the windows the store planned,
  and what the store holds, window by window;
- `assert_exactly_once`: outcome (a), the exact rows once and no row twice;
- `Snapshot`: outcome (b), the previous data kept as it was;
- `run_cli`: the `circlecost` console script in a subprocess (a real process to SIGKILL);
- `SCOREBOARD`: what the terminal summary prints at the end of the run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from circlecost.engine import SharedStore
from circlecost.models import IntegrationInputs
from circlecost.settings import CLOCK_OFFSET_VARIABLE, Settings
from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.clock import real_now
from tests.emulator.helpers import credit
from tests.engines import store_env
from tests.support import CREDIT_COLUMNS, FAST_IMPORTS

CIRCLECOST = Path(sys.executable).parent / "circlecost"
CREDITS_SQL = " + ".join(f"coalesce({column}, 0)" for column in CREDIT_COLUMNS)
# FAST_IMPORTS, as a circlecost process reads it from its environment.
FAST_POLLING_ENV = {
    "CIRCLECOST_FIRST_POLL_SECONDS": f"{FAST_IMPORTS.first_poll_after.total_seconds():g}",
    "CIRCLECOST_POLL_SECONDS": f"{FAST_IMPORTS.poll_every.total_seconds():g}",
    "CIRCLECOST_RETRY_SECONDS": f"{FAST_IMPORTS.retry_failed_window_after.total_seconds():g}",
}


def integration_inputs(
    org_id: str, token: str, backfill_months: int = 1, **extra: object
) -> IntegrationInputs:
    return IntegrationInputs.model_validate(
        {"token": token, "organization_id": org_id, "backfill_months": backfill_months, **extra}
    )


@dataclass(frozen=True)
class Rows:
    count: int
    credits: Decimal

    def __add__(self, other: Rows) -> Rows:
        return Rows(self.count + other.count, self.credits + other.credits)


NO_ROWS = Rows(0, Decimal(0))


def served(emulator: Emulator, store: Store, integration_id: str) -> dict[datetime, Rows]:
    """What the emulator serves for each window the store planned, keyed by window start."""
    record = store.get_integration(integration_id)
    assert record is not None
    result = {}
    for planned in store.list_windows(integration_id):
        rows = emulator.expected_rows(
            record.organization_id, planned.window.start, planned.window.end
        )
        credits = sum(
            (credit(row, column) for row in rows for column in CREDIT_COLUMNS), Decimal(0)
        )
        result[planned.window.start] = Rows(len(rows), credits)
    return result


def stored(store: Store, integration_id: str) -> dict[datetime, Rows]:
    """What the store holds for each planned window (windows without rows included)."""
    result = {planned.window.start: NO_ROWS for planned in store.list_windows(integration_id)}
    with store.reader() as con:
        found = con.execute(
            f"SELECT window_start, count(*), sum({CREDITS_SQL}) FROM usage "
            "WHERE integration_id = ? GROUP BY window_start",
            [integration_id],
        ).fetchall()
    for start, count, credits in found:
        result[_utc(start)] = Rows(int(count), Decimal(credits or 0))
    return result


def total(rows: Mapping[datetime, Rows]) -> Rows:
    return sum(rows.values(), NO_ROWS)


def duplicated_rows(store: Store, integration_id: str) -> int:
    """Rows that are in the store more than once: a source line loaded twice into a window, or
    a window holding rows of two export jobs."""
    with store.reader() as con:
        row = con.execute(
            "SELECT count(*) - count(DISTINCT (window_start, source_part, source_line)) "
            "FROM usage WHERE integration_id = ?",
            [integration_id],
        ).fetchone()
        mixed = con.execute(
            "SELECT count(*) FROM (SELECT window_start FROM usage WHERE integration_id = ? "
            "GROUP BY window_start HAVING count(DISTINCT coalesce(export_job_id, '')) > 1)",
            [integration_id],
        ).fetchone()
    assert row is not None
    assert mixed is not None
    return int(row[0]) + int(mixed[0])


def assert_exactly_once(
    emulator: Emulator,
    store: Store,
    integration_id: str,
    windows: Sequence[datetime] | None = None,
) -> Rows:
    """Outcome (a): for `windows` (default: every planned window) the store holds exactly the
    rows and credits the emulator serves, and no row twice. Returns the rows compared."""
    expected, got = served(emulator, store, integration_id), stored(store, integration_id)
    chosen = list(expected) if windows is None else list(windows)
    assert {start: got[start] for start in chosen} == {start: expected[start] for start in chosen}
    assert duplicated_rows(store, integration_id) == 0
    return total({start: got[start] for start in chosen})


@dataclass(frozen=True)
class Snapshot:
    """Outcome (b): the data of an integration before a fault, to compare after it."""

    rows: dict[datetime, Rows]
    loaded_windows: frozenset[datetime]

    @classmethod
    def of(cls, store: Store, integration_id: str) -> Snapshot:
        loaded = {w.window.start for w in store.list_windows(integration_id) if w.state == "loaded"}
        return cls(stored(store, integration_id), frozenset(loaded))

    def assert_intact(self, store: Store, integration_id: str) -> Rows:
        now = stored(store, integration_id)
        assert {start: now.get(start, NO_ROWS) for start in self.rows} == self.rows
        assert duplicated_rows(store, integration_id) == 0
        return total(now)


def table_counts(store: Store) -> dict[str, int]:
    """Row counts of every table that a write could touch."""
    tables = (
        "usage",
        "integrations",
        "prices",
        "import_windows",
        "export_jobs",
        "workspaces",
        "bindings",
        "principals",
        "audit_log",
    )
    counts = {}
    with store.reader() as con:
        for table in tables:
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            counts[table] = int(row[0]) if row else 0
    return counts


def cli_env(
    emulator: Emulator, store_location: Path | SharedStore, token: str, **extra: str
) -> dict[str, str]:
    """The environment of a `circlecost` subprocess: this one's, minus circlecost's own
    variables, plus the emulator, the store (a file, or a shared store's catalog and data path),
    the actor, fast polling and the emulator's clock."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CIRCLECOST_", "CIRCLECI_"))
    }
    return {
        **inherited,
        **FAST_POLLING_ENV,
        "CIRCLECI_TOKEN": token,
        "CIRCLECI_URL": emulator.base_url,
        **store_env(store_location),
        "CIRCLECOST_ACTOR": "ana",
        "CIRCLECOST_ALLOW_LOOPBACK_DOWNLOADS": "1",
        CLOCK_OFFSET_VARIABLE: f"{(emulator.clock.now() - real_now()).total_seconds():.3f}",
        **extra,
    }


def run_cli(
    *args: str, env: Mapping[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CIRCLECOST), *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


# --- the scoreboard printed by the terminal summary --------------------------------------------


@dataclass
class FaultRow:
    fault: str
    outcome: str
    expected: int
    got: int


@dataclass
class Scoreboard:
    faults: list[FaultRow] = field(default_factory=list)
    malformed_cases: int = 0
    malformed_failures: int = 0
    fuzzed_filters: int = 0
    secret_places: int = 0
    secret_hits: int = 0

    def fault(self, fault: str, outcome: str, expected: Rows | int, got: Rows | int) -> None:
        self.faults.append(
            FaultRow(
                fault,
                outcome,
                expected.count if isinstance(expected, Rows) else expected,
                got.count if isinstance(got, Rows) else got,
            )
        )

    def lines(self) -> list[str]:
        lines = []
        if self.faults:
            fault = max(len(row.fault) for row in self.faults)
            outcome = max(len(row.outcome) for row in self.faults)
            lines.append(f"{'fault':<{fault}}  {'outcome':<{outcome}}  rows expected/got")
            for row in self.faults:
                lines.append(
                    f"{row.fault:<{fault}}  {row.outcome:<{outcome}}  {row.expected}/{row.got}"
                )
        if self.malformed_cases:
            lines.append(
                f"malformed input: {self.malformed_cases} cases refused with a clear error and "
                f"no write, {self.malformed_failures} failures"
            )
        if self.fuzzed_filters:
            lines.append(
                f"fuzzed filters: {self.fuzzed_filters} compiled to bound parameters or refused"
            )
        if self.secret_places:
            lines.append(
                f"secret hygiene: {self.secret_places} places scanned, "
                f"{self.secret_hits} occurrences of the token"
            )
        return lines


SCOREBOARD = Scoreboard()


def store_file(settings: Settings) -> Path:
    """The fault suite's store is an embedded file (its tests are about files, locks, crashes)."""
    assert isinstance(settings.store_location, Path)
    return settings.store_location
