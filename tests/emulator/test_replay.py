"""Replay mode: real export files served back byte for byte, filtered by window."""

import gzip
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest

from circlecost.usage_columns import COLUMN_NAMES, CREDIT_SERVICES
from circlecost_emulator import Emulator, ReplayError
from tests.support import DATA

from .helpers import NOW, OCTOBER, api_client, credit, download_urls, fetch

INITECH = "6513270e-269e-4d37-b2a7-4de452e6b438"


def file_lines(folder: Path) -> tuple[set[bytes], list[bytes]]:
    """Headers and data lines of the sample files (they hold no multi-line records)."""
    headers: set[bytes] = set()
    lines: list[bytes] = []
    for path in sorted(folder.glob("*.csv.gz")):
        header, *rows = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
        headers.add(header)
        lines += rows
    return headers, lines


def served_lines(
    http: httpx.Client, client: httpx.Client, org_id: str, window: dict[str, str]
) -> tuple[set[bytes], list[bytes]]:
    headers: set[bytes] = set()
    lines: list[bytes] = []
    for url in download_urls(client, org_id, window):
        header, *rows = gzip.decompress(fetch(http, url)).splitlines(keepends=True)
        headers.add(header)
        lines += rows
    return headers, lines


def start_replay(folder: Path) -> Emulator:
    emulator = Emulator(replay_dir=folder)
    emulator.start()
    emulator.clock.freeze(NOW)
    return emulator


@pytest.fixture
def replay() -> Iterator[tuple[Emulator, httpx.Client]]:
    emulator = start_replay(DATA)
    with api_client(emulator) as client:
        yield emulator, client
    emulator.stop()


def test_replay_registers_the_organizations_of_the_files(
    replay: tuple[Emulator, httpx.Client],
) -> None:
    emulator, client = replay
    assert emulator.organizations == [{"id": INITECH, "name": "initech", "slug": "gh/initech"}]
    assert [c["id"] for c in client.get("/me/collaborations").json()] == [INITECH]
    assert client.get("/organization/gh/initech").json()["id"] == INITECH


def test_replay_serves_the_month_byte_for_byte(
    replay: tuple[Emulator, httpx.Client], http: httpx.Client
) -> None:
    _, client = replay
    file_headers, expected = file_lines(DATA)
    headers, served = served_lines(http, client, INITECH, OCTOBER)
    assert len(served) == 401
    assert Counter(served) == Counter(expected)
    assert headers == file_headers
    assert b"feature\\,comma" in b"".join(served)
    assert b'"integration ""slow"""' in b"".join(served)


def test_replay_filters_rows_by_date_into_disjoint_windows(
    replay: tuple[Emulator, httpx.Client],
    http: httpx.Client,
) -> None:
    emulator, client = replay
    first = {"start": "2026-10-01T00:00:00Z", "end": "2026-10-15T23:59:59Z"}
    second = {"start": "2026-10-16T00:00:00Z", "end": "2026-10-31T23:59:59Z"}
    early, late = (
        served_lines(http, client, INITECH, first)[1],
        served_lines(http, client, INITECH, second)[1],
    )
    assert early
    assert late
    assert Counter(early + late) == Counter(file_lines(DATA)[1])
    rows = emulator.expected_rows(INITECH, date(2026, 10, 1), date(2026, 10, 15))
    assert len(rows) == len(early)
    for row in rows:
        when = row["JOB_RUN_DATE"] or row["PIPELINE_CREATED_AT"]
        assert isinstance(when, date)
        assert when.day <= 15


def test_replay_expected_rows_match_the_documented_totals(expected: dict[str, Any]) -> None:
    rows = Emulator(replay_dir=DATA).expected_rows(INITECH, date(2026, 10, 1), date(2026, 10, 31))
    components = [column for column, _ in CREDIT_SERVICES]
    assert len(rows) == expected["usage_rows"]
    assert (
        sum(credit(r, c) for r in rows for c in components)
        == expected["total_credits_from_components"]
    )
    assert sum(r["JOB_ID"] is None for r in rows) == expected["rows_without_job"]
    mismatched = [r for r in rows if r["TOTAL_CREDITS"] != sum(credit(r, c) for c in components)]
    assert len(mismatched) == expected["rows_with_total_mismatch"]


def row(**values: str) -> str:
    """One record of the 48 columns, NULL except where given (values are written as is)."""
    return ",".join(values.get(name, "\\N") for name in COLUMN_NAMES)


ORG_X = "11111111-1111-4111-8111-111111111111"
ORG_Y = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def odd_folder(tmp_path: Path) -> Path:
    """A plain .csv with CRLF ends, a multi-line quoted field, date fallbacks, a non-UTF-8 byte."""
    records = [
        row(
            ORGANIZATION_ID=ORG_X, ORGANIZATION_NAME="xco", JOB_RUN_DATE="2026-10-05", JOB_NAME="a"
        ),
        row(
            ORGANIZATION_ID=ORG_X,
            ORGANIZATION_NAME="xco",
            JOB_RUN_STARTED_AT="2026-10-20 10:00:00",
            JOB_NAME='"two\r\nlines, ""quoted"""',
        ),
        row(ORGANIZATION_ID=ORG_X, ORGANIZATION_NAME="xco", USER_CREDITS="25000"),
        row(
            ORGANIZATION_ID=ORG_Y,
            ORGANIZATION_NAME="yco",
            JOB_RUN_DATE="2026-10-07",
            VCS_BRANCH="b\\,r",
        ),
        row(
            ORGANIZATION_ID=ORG_X,
            ORGANIZATION_NAME="xco",
            PIPELINE_CREATED_AT="2026-10-25 08:00:00",
        ),
    ]
    data = ("\r\n".join([",".join(COLUMN_NAMES), *records])).encode()
    data = data.replace(b"b\\,r", b"b\\,r\xff")  # bytes that are not UTF-8 must survive too
    (tmp_path / "export.csv").write_bytes(data)
    return tmp_path


def test_replay_keeps_odd_records_intact_and_dates_them_by_the_fallbacks(
    odd_folder: Path, http: httpx.Client
) -> None:
    early_window = {"start": "2026-10-01T00:00:00Z", "end": "2026-10-10T00:00:00Z"}
    late_window = {"start": "2026-10-11T00:00:00Z", "end": "2026-10-31T00:00:00Z"}
    emulator = start_replay(odd_folder)
    try:
        assert [o["name"] for o in emulator.organizations] == ["xco", "yco"]
        with api_client(emulator) as client:
            early = served_lines(http, client, ORG_X, early_window)[1]
            late_url = download_urls(client, ORG_X, late_window)[0]
            late = gzip.decompress(fetch(http, late_url))
            other = served_lines(http, client, ORG_Y, OCTOBER)[1]
    finally:
        emulator.stop()
    # The undated seat row takes the file's earliest date, 2026-10-05.
    assert [line.split(b",")[22] for line in early] == [b"a", b"\\N"]
    assert b'"two\r\nlines, ""quoted"""' in late
    # The file's last record had no line end: it gets the file's CRLF.
    assert late.endswith(b"2026-10-25 08:00:00" + b",\\N" * 36 + b"\r\n")
    branch_row = row(
        ORGANIZATION_ID=ORG_Y,
        ORGANIZATION_NAME="yco",
        JOB_RUN_DATE="2026-10-07",
        VCS_BRANCH="b\\,r",
    )
    assert other == [branch_row.encode().replace(b"b\\,r", b"b\\,r\xff") + b"\r\n"]


def test_replay_refuses_a_folder_without_exports(tmp_path: Path) -> None:
    with pytest.raises(ReplayError, match="files to replay"):
        Emulator(replay_dir=tmp_path)
    with pytest.raises(ReplayError, match="does not exist"):
        Emulator(replay_dir=tmp_path / "missing")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"A,B\n1,2\n", "no ORGANIZATION_ID column"),
        (b"ORGANIZATION_ID,B\nx,1,2\n", "3 fields"),
        (b'ORGANIZATION_ID,B\n"x"y,1\n', "unexpected"),
    ],
)
def test_replay_names_the_file_it_cannot_read(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "bad.csv").write_bytes(content)
    with pytest.raises(ReplayError, match=message) as raised:
        Emulator(replay_dir=tmp_path)
    assert "bad.csv" in str(raised.value)


def test_a_file_that_is_not_gzip_is_reported(tmp_path: Path) -> None:
    (tmp_path / "part.csv.gz").write_bytes(b"ORGANIZATION_ID\n")
    with pytest.raises(ReplayError, match="gzip"):
        Emulator(replay_dir=tmp_path)
