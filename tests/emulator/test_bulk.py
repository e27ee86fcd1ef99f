"""Bulk mode: many rows, quickly, in the export format."""

import gzip
from datetime import date
from pathlib import Path

import pytest

from circlecost.usage_columns import COLUMN_NAMES
from circlecost_emulator import write_bulk_export
from circlecost_emulator.dialect import iter_records, typed_row

HEADER = (",".join(COLUMN_NAMES) + "\n").encode()
MONTH = date(2026, 9, 1)


@pytest.fixture(scope="module")
def bulk(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_bulk_export(
        tmp_path_factory.mktemp("bulk") / "usage", 20_000, parts=3, seed=5, month=MONTH
    )


def test_bulk_writes_the_parts_each_with_a_header(bulk: list[Path]) -> None:
    assert [p.name for p in bulk] == [f"usage-part-{n}.csv.gz" for n in (1, 2, 3)]
    contents = [gzip.decompress(p.read_bytes()) for p in bulk]
    assert all(c.startswith(HEADER) for c in contents)
    assert sum(c.count(b"\n") - 1 for c in contents) == 20_000


def test_bulk_rows_parse_are_unique_jobs_and_lie_in_the_month(bulk: list[Path]) -> None:
    rows = []
    for path in bulk:
        records = list(iter_records(gzip.decompress(path.read_bytes()).decode()))
        rows += [typed_row(COLUMN_NAMES, fields) for _, fields in records[1:]]
    job_ids = [r["JOB_ID"] for r in rows if r["JOB_ID"] is not None]
    assert len(job_ids) == len(set(job_ids))
    dates = {r["JOB_RUN_DATE"] for r in rows if r["JOB_RUN_DATE"] is not None}
    assert all(isinstance(d, date) and d.replace(day=1) == MONTH for d in dates)


def test_bulk_rows_are_mostly_plain_with_a_few_edge_rows(bulk: list[Path]) -> None:
    lines = b"".join(gzip.decompress(p.read_bytes()) for p in bulk).splitlines()[1:]
    edge = [line for line in lines if b'"' in line or b"\\," in line]
    assert 0.005 * len(lines) <= len(edge) <= 0.02 * len(lines)


def test_bulk_output_is_a_function_of_its_arguments(bulk: list[Path], tmp_path: Path) -> None:
    again = write_bulk_export(tmp_path / "usage", 20_000, parts=3, seed=5, month=MONTH)
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in bulk]


def test_bulk_with_no_rows_writes_headers_only(tmp_path: Path) -> None:
    paths = write_bulk_export(tmp_path / "empty", 0, parts=2, month=MONTH)
    assert [gzip.decompress(p.read_bytes()) for p in paths] == [HEADER, HEADER]
