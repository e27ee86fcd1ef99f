"""Fixtures: a migrated store in tmp_path, the sample export, and a writer of small parts."""

import gzip
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from circlecost.store import Integration, Store, token_fingerprint
from circlecost.usage_columns import COLUMN_NAMES
from circlecost.windows import Window
from tests.engines import ENGINES, new_store

DATA = Path(__file__).resolve().parent.parent / "data"
SAMPLE_PARTS = [DATA / "usage-export-part-1.csv.gz", DATA / "usage-export-part-2.csv.gz"]
ORG_ID = "6513270e-269e-4d37-b2a7-4de452e6b438"
OCTOBER = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))
NOVEMBER = Window(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC))
HEADER = ",".join(COLUMN_NAMES)

WritePart = Callable[..., Path]


@pytest.fixture
def expected() -> dict[str, object]:
    figures: dict[str, object] = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))
    return figures


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """A new store on each engine: an embedded file and a shared DuckLake store."""
    return new_store(request, request.param, tmp_path)


@pytest.fixture
def integration(store: Store) -> Integration:
    return store.insert_integration(
        ORG_ID,
        token_fingerprint("CCIPAT_test_token"),
        organization_name="initech",
        base_price=Decimal("0.0006"),
    )


@pytest.fixture
def base_fields() -> dict[str, str]:
    """The raw fields of a plain job line of the sample (line 4 of part 1), by column."""
    with gzip.open(SAMPLE_PARTS[0], "rt", encoding="utf-8", newline="") as lines:
        next(lines), next(lines), next(lines)
        values = next(lines).rstrip("\n").split(",")
    return dict(zip(COLUMN_NAMES, values, strict=True))


@pytest.fixture
def write_part(tmp_path: Path, base_fields: dict[str, str]) -> WritePart:
    """Writes a part: header plus one line per item (a dict of raw fields over the base line,
    or a ready-made raw line)."""
    counter = iter(range(1, 1000))

    def write(*lines: Mapping[str, str] | str, gzipped: bool = True, header: str = HEADER) -> Path:
        raw = [
            line if isinstance(line, str) else ",".join({**base_fields, **line}.values())
            for line in lines
        ]
        text = "\n".join([header, *raw]) + "\n"
        path = tmp_path / f"part-{next(counter)}.csv{'.gz' if gzipped else ''}"
        path.write_bytes(gzip.compress(text.encode()) if gzipped else text.encode())
        return path

    return write
