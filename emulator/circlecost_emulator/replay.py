"""Replay mode: serve the rows of real export files instead of generated ones.

Every record is kept as the exact text it was read from (decoded with `surrogateescape`, so
even bytes that are not UTF-8 come back unchanged) and served under its own file's header, so a
client sees escaping and quoting byte for byte as CircleCI wrote them. A record that is the last
of its file without a line end gets the file's line end, so records can be concatenated.

Each record is dated by JOB_RUN_DATE, else JOB_RUN_STARTED_AT, else PIPELINE_CREATED_AT (their
date part). A record with none of the three takes the earliest date of its file, so it is served
in exactly the windows that contain that date. A record without ORGANIZATION_ID belongs to the
first organization its file names.
"""

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from circlecost.usage_columns import COLUMN_NAMES
from circlecost_emulator.clock import as_utc
from circlecost_emulator.dialect import (
    DialectError,
    UsageRow,
    header_names,
    iter_records,
    parse_record,
    typed_row,
)
from circlecost_emulator.export import ExportPart, split_into_parts
from circlecost_emulator.organizations import Organization

DATE_COLUMNS: tuple[str, ...] = ("JOB_RUN_DATE", "JOB_RUN_STARTED_AT", "PIPELINE_CREATED_AT")


class ReplayError(ValueError):
    """A replay folder or file that cannot be served; the message names the file."""


@dataclass(frozen=True)
class ReplayRow:
    org_id: str
    day: date | None
    header: str
    names: tuple[str, ...]
    raw: str


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise ReplayError(f"{path}: not a readable gzip file ({err})") from err
    return data.decode("utf-8", "surrogateescape")


def _row_day(fields: Sequence[str | None], index: dict[str, int]) -> date | None:
    for column in DATE_COLUMNS:
        position = index.get(column)
        text = fields[position] if position is not None else None
        if text:
            try:
                return date.fromisoformat(text[:10])
            except ValueError:
                continue  # an unreadable date falls back to the next column, like a NULL
    return None


def _org_cell(fields: Sequence[str | None], index: dict[str, int], column: str) -> str | None:
    position = index.get(column)
    return fields[position] if position is not None else None


def load_file(path: Path) -> tuple[list[ReplayRow], dict[str, str]]:
    """The rows of one export file and the organizations (id -> name) it names."""
    text = _read_text(path)
    try:
        return _rows_of(path, text)
    except DialectError as err:
        raise ReplayError(f"{path}: {err}") from err


def _rows_of(path: Path, text: str) -> tuple[list[ReplayRow], dict[str, str]]:
    records = iter_records(text)
    first = next(records, None)
    if first is None:
        return [], {}
    header, header_fields = first
    names = tuple(header_names(header_fields))
    index = {name: i for i, name in enumerate(names)}
    if "ORGANIZATION_ID" not in index:
        raise ReplayError(f"{path}: the header has no ORGANIZATION_ID column")
    line_end = "\r\n" if header.endswith("\r\n") else "\n"
    pending: list[tuple[str | None, date | None, str]] = []
    organizations: dict[str, str] = {}
    for raw, fields in records:
        if len(fields) != len(names):
            raise ReplayError(f"{path}: a record has {len(fields)} fields, the header {len(names)}")
        org_id = _org_cell(fields, index, "ORGANIZATION_ID")
        if org_id:
            organizations.setdefault(
                org_id, _org_cell(fields, index, "ORGANIZATION_NAME") or org_id
            )
        pending.append(
            (org_id, _row_day(fields, index), raw if raw.endswith("\n") else raw + line_end)
        )
    return _resolve(path, pending, header, names, organizations), organizations


def _resolve(
    path: Path,
    pending: list[tuple[str | None, date | None, str]],
    header: str,
    names: tuple[str, ...],
    organizations: dict[str, str],
) -> list[ReplayRow]:
    """Give undated rows the file's earliest date and orphan rows the file's first org."""
    if pending and not organizations:
        raise ReplayError(f"{path}: no record names an ORGANIZATION_ID")
    first_org = next(iter(organizations), "")
    earliest = min((day for _, day, _ in pending if day is not None), default=None)
    return [
        ReplayRow(org_id or first_org, day or earliest, header, names, raw)
        for org_id, day, raw in pending
    ]


class ReplaySource:
    """The rows of every `*.csv.gz` and `*.csv` file of a folder, by organization and date."""

    def __init__(self, rows: list[ReplayRow], organizations: dict[str, str]) -> None:
        self._rows = rows
        self._organizations = organizations

    @classmethod
    def load(cls, folder: str | Path) -> "ReplaySource":
        root = Path(folder)
        if not root.is_dir():
            raise ReplayError(f"{root}: the replay folder does not exist")
        files = sorted(p for p in root.iterdir() if p.name.endswith((".csv.gz", ".csv")))
        if not files:
            raise ReplayError(f"{root}: no *.csv.gz or *.csv files to replay")
        rows: list[ReplayRow] = []
        organizations: dict[str, str] = {}
        for path in files:
            file_rows, file_orgs = load_file(path)
            rows.extend(file_rows)
            for org_id, name in file_orgs.items():
                organizations.setdefault(org_id, name)
        return cls(rows, organizations)

    def organizations(self) -> list[Organization]:
        return [Organization(org_id, name) for org_id, name in self._organizations.items()]

    def rows(self, org_ids: Sequence[str], start: datetime, end: datetime) -> list[ReplayRow]:
        """Rows of these organizations whose date lies within the window's first and last day."""
        first, last = as_utc(start).date(), as_utc(end).date()
        wanted = set(org_ids)
        return [
            r
            for r in self._rows
            if r.org_id in wanted and r.day is not None and first <= r.day <= last
        ]

    def export_parts(
        self, org_ids: Sequence[str], start: datetime, end: datetime, rows_per_part: int
    ) -> list[ExportPart]:
        rows = self.rows(org_ids, start, end)
        # Parts never mix files whose headers differ: each part carries one header.
        by_header: dict[str, list[str]] = {}
        for row in rows:
            by_header.setdefault(row.header, []).append(row.raw)
        if not by_header:
            return split_into_parts(",".join(COLUMN_NAMES) + "\n", [], rows_per_part)
        return [
            part
            for header, lines in by_header.items()
            for part in split_into_parts(header, lines, rows_per_part)
        ]

    def expected_rows(
        self, org_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[UsageRow]:
        return [typed_row(r.names, parse_record(r.raw)[0]) for r in self.rows(org_ids, start, end)]
