"""Fixtures: a migrated store in tmp_path, and a writer of small parts over the sample's line.
The sample export itself and its figures come from tests/support.py and tests/conftest.py."""

import gzip
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path

import pytest

from circlecost.store import Integration, Store
from circlecost.vocabulary import token_fingerprint
from tests.engines import ENGINES, new_store
from tests.support import HEADER, ORG_ID, plain_line_fields

WritePart = Callable[..., Path]


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
    return plain_line_fields()


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
