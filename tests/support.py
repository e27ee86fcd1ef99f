"""What the test folders share: the sample export, the emulator's options, fast service settings.

tests/conftest.py turns them into fixtures (`emulator`, `module_emulator`, `settings`,
`expected`); test modules import the constants and helpers from here, never from a conftest.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from circlecost.engine import SharedStore
from circlecost.importer import ImportSettings
from circlecost.settings import Settings
from circlecost.store import Store
from circlecost.usage_columns import COLUMN_NAMES, CREDIT_SERVICES
from circlecost.windows import Window
from circlecost_emulator import Emulator
from circlecost_emulator.generator import HEADER_LINE, UsageGenerator
from circlecost_emulator.organizations import Organization

# --- the sample export: two parts of one organization's October 2026 (tests/data) -----------

DATA = Path(__file__).resolve().parent / "data"
SAMPLE_PARTS = [DATA / "usage-export-part-1.csv.gz", DATA / "usage-export-part-2.csv.gz"]
# The sample's figures, worked out without circlecost.
EXPECTED: dict[str, Any] = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
ORG_ID = "6513270e-269e-4d37-b2a7-4de452e6b438"
OCTOBER = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))
NOVEMBER = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
HEADER = ",".join(COLUMN_NAMES)
CREDIT_COLUMNS = tuple(column for column, _service in CREDIT_SERVICES)  # the 8 components


def plain_line_fields() -> dict[str, str]:
    """The raw fields of a plain job line of the sample (line 4 of part 1), by column."""
    with gzip.open(SAMPLE_PARTS[0], "rt", encoding="utf-8", newline="") as lines:
        line = [next(lines) for _ in range(4)][-1]
    return dict(zip(COLUMN_NAMES, line.rstrip("\n").split(","), strict=True))


def load_sample_export(store: Store, integration_id: str) -> None:
    """Plans October for the integration and loads the two sample parts into it."""
    store.plan_windows(integration_id, [OCTOBER])
    store.replace_window_rows(integration_id, OCTOBER, None, SAMPLE_PARTS)


def sample_replay_dir(folder: Path) -> Path:
    """`folder`/replay holding the sample's parts: `Emulator(replay_dir=...)` serves them."""
    replay = folder / "replay"
    replay.mkdir()
    for part in SAMPLE_PARTS:
        shutil.copy(part, replay / part.name)
    return replay


# --- the emulator ---------------------------------------------------------------------------

# What the `emulator` fixture passes to Emulator unless a folder's `emulator_options` fixture or
# a module's or test's `emulator(...)` marker says otherwise: export jobs complete at once and
# there is no quota; a test about job delays or the quota asks for them.
FAST_EMULATOR: Mapping[str, Any] = {"job_delay": 0.0, "quota_per_hour": None}


def marked_emulator_options(
    defaults: Mapping[str, Any], node: pytest.Item | pytest.Collector
) -> dict[str, Any]:
    """`defaults`, then the keyword arguments of the node's `emulator` markers, the module's
    before the class's before the test's."""
    options = dict(defaults)
    for marker in reversed(list(node.iter_markers("emulator"))):
        options.update(marker.kwargs)
    return options


def org_and_token(emulator: Emulator, index: int = 0) -> tuple[str, str]:
    """An organization of the emulator and the token of its admin bot."""
    org_id = emulator.organizations[index]["id"]
    return org_id, emulator.org_admin_tokens[org_id]


# --- service settings against the emulator --------------------------------------------------

FAST_IMPORTS = ImportSettings(
    first_poll_after=timedelta(0),
    poll_every=timedelta(seconds=0.05),
    retry_failed_window_after=timedelta(seconds=0.05),
)


def emulator_settings(
    emulator: Emulator, store_location: Path | SharedStore, **changes: Any
) -> Settings:
    """Settings of ana against `emulator`: loopback download links allowed, fast polling, a
    minute for a create to finish, no wait for bindings; `changes` replace any of them."""
    fields: dict[str, Any] = {
        "store_location": store_location,
        "circleci_url": emulator.base_url,
        "actor": "ana",
        "allow_loopback_downloads": True,
        "imports": FAST_IMPORTS,
        "create_timeout": timedelta(seconds=60),
        "binding_timeout": timedelta(seconds=0),
    }
    return Settings(**{**fields, **changes})


# --- a generated month, for the insights ------------------------------------------------------

GENERATED_ORG = Organization(id="3f7c1d2e-8a9b-4c5d-9e0f-1a2b3c4d5e6f", name="umbrella")


def generated_store(
    folder: Path, utilization: str = "mixed", spikes: dict[tuple[date, str], int] | None = None
) -> tuple[Store, Path]:
    """October of a generated organization (the emulator's generator, seed 11, with the given
    utilisation profile and spikes) loaded into a new store at $0.0006 per credit, and the part
    loaded."""
    generator = UsageGenerator(
        seed=11, jobs_per_project_per_day=4, utilization=utilization, spikes=spikes
    )
    rows = generator.rows(GENERATED_ORG, OCTOBER.start, OCTOBER.end)
    part = folder / "part.csv.gz"
    part.write_bytes(gzip.compress((HEADER_LINE + "".join(r.render() for r in rows)).encode()))
    store = Store(folder / "costs.duckdb")
    store.migrate()
    store.ensure_first_owner("ana")
    integration = store.insert_integration(
        GENERATED_ORG.id,
        "sha256:generated",
        base_price=Decimal("0.0006"),
        organization_name=GENERATED_ORG.name,
    )
    store.plan_windows(integration.id, [OCTOBER])
    store.replace_window_rows(integration.id, OCTOBER, None, [part])
    return store, part
