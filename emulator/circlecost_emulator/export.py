"""Export files: splitting rows into parts, and the bytes a part download returns."""

import gzip
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from circlecost_emulator.dialect import UsageRow
from circlecost_emulator.faults import Faults
from circlecost_emulator.organizations import Organization


@dataclass
class ExportPart:
    """One `.csv.gz` file of an export: its own header record, then its rows, as text."""

    header: str
    body: str
    rows: int
    _packed: bytes | None = field(default=None, repr=False)

    def csv_bytes(self, header: str | None = None) -> bytes:
        # surrogateescape gives back the exact bytes a replayed file was read from.
        return ((header or self.header) + self.body).encode("utf-8", "surrogateescape")

    def gzip_bytes(self) -> bytes:
        if self._packed is None:
            self._packed = gzip.compress(self.csv_bytes(), compresslevel=6, mtime=0)
        return self._packed


class UsageSource(Protocol):
    """Where an emulator's usage rows come from: the generator or replayed files."""

    def organizations(self) -> list[Organization]: ...

    def export_parts(
        self, org_ids: Sequence[str], start: datetime, end: datetime, rows_per_part: int
    ) -> list[ExportPart]: ...

    def expected_rows(
        self, org_ids: Sequence[str], start: datetime, end: datetime
    ) -> list[UsageRow]: ...


def split_into_parts(header: str, lines: Sequence[str], rows_per_part: int) -> list[ExportPart]:
    """Chunk rows into parts that each repeat the header; an empty export is one bare header."""
    if not lines:
        return [ExportPart(header, "", 0)]
    return [
        ExportPart(header, "".join(lines[i : i + rows_per_part]), len(lines[i : i + rows_per_part]))
        for i in range(0, len(lines), rows_per_part)
    ]


WRONG_COLUMN: tuple[str, str] = ("TOTAL_CREDITS", "TOTAL_CREDIT")


def part_payload(part: ExportPart, faults: Faults) -> bytes:
    """The body of a part download, with any download fault that is pending applied."""
    if faults.take("wrong_columns"):
        data = part.csv_bytes(part.header.replace(*WRONG_COLUMN, 1))
        packed = gzip.compress(data, mtime=0)
    else:
        data = part.csv_bytes()
        packed = part.gzip_bytes()
    if faults.take("non_gzip_part"):
        return data
    if faults.take("truncate_gzip"):
        return packed[: len(packed) // 2]
    return packed
