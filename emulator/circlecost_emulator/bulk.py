"""Bulk mode: write a large usage export quickly, for benchmarks of the import path.

Calling the generator once per row would take minutes for a million rows, so a month of
generated rows serves as templates: each output row is a template whose JOB_ID is replaced by a
unique id built from a counter, and 1 row in 100 is an edge row (escaped or quoted delimiters,
doubled quotes); the rest need no escaping. Seat rows without a job are written as they are.
Files are gzip level 1: compression dominates the run time, and the data is thrown away after.
"""

import gzip
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Final

from circlecost_emulator.generator import HEADER_LINE, UsageGenerator
from circlecost_emulator.organizations import Organization, default_organizations, seeded_uuid

EDGE_ROW_EVERY: Final = 100
_CHUNK_ROWS: Final = 20_000
_MARKER: Final = "\x00"  # never occurs in generated text, so it marks where JOB_ID goes


def _previous_month(today: date) -> date:
    return (today.replace(day=1) - timedelta(days=1)).replace(day=1)


def _templates(seed: int, org: Organization, month: date) -> tuple[list[str], list[str]]:
    """Plain and edge templates; each is a rendered row, split at JOB_ID when it has one."""
    generator = UsageGenerator(seed)
    last = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    start = datetime.combine(month, time.min, UTC)
    end = datetime.combine(last, time.max, UTC)
    plain: list[str] = []
    edge: list[str] = []
    for row in generator.rows(org, start, end):
        if row.values["JOB_ID"] is not None:
            row.values["JOB_ID"] = _MARKER
        line = row.render()
        is_plain = '"' not in line and "\\," not in line
        (plain if is_plain else edge).append(line)
    if not plain:
        raise ValueError(f"the generator produced no rows for {org.name} in {month:%Y-%m}")
    return plain, edge or plain


def _lines(
    templates: tuple[list[str], list[str]], prefix: str, first: int, count: int
) -> Iterator[str]:
    plain, edge = templates
    for number in range(first, first + count):
        pool = edge if number % EDGE_ROW_EVERY == EDGE_ROW_EVERY - 1 else plain
        template = pool[number % len(pool)]
        yield template.replace(_MARKER, f"{prefix}{number:012x}", 1)


def write_bulk_export(
    path_prefix: str | Path,
    rows: int,
    parts: int = 1,
    seed: int = 0,
    *,
    organization: Organization | None = None,
    month: date | None = None,
) -> list[Path]:
    """Write `rows` rows for one organization into `parts` files `<prefix>-part-<n>.csv.gz`.

    Every file starts with the header. Rows are dated within `month` (its first day; default:
    the previous calendar month in UTC) and belong to `organization` (default: the seed's first
    demo organization). The content is a pure function of the arguments.
    """
    if rows < 0 or parts < 1:
        raise ValueError("rows must be >= 0 and parts >= 1")
    org = organization or default_organizations(seed)[0]
    first_day = (month or _previous_month(datetime.now(UTC).date())).replace(day=1)
    templates = _templates(seed, org, first_day)
    # The job ids share a seeded prefix and end in the row number: unique and cheap to make.
    prefix = seeded_uuid(seed, org.id, "bulk")[:24]
    paths: list[Path] = []
    per_part = -(-rows // parts)  # ceiling division: the last part may be shorter
    for index in range(parts):
        path = Path(f"{path_prefix}-part-{index + 1}.csv.gz")
        path.parent.mkdir(parents=True, exist_ok=True)
        first = index * per_part
        count = max(0, min(per_part, rows - first))
        _write_part(path, _lines(templates, prefix, first, count))
        paths.append(path)
    return paths


def _write_part(path: Path, lines: Iterator[str]) -> None:
    # mtime=0 keeps the bytes a pure function of the arguments.
    with (
        path.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as handle,
    ):
        handle.write(HEADER_LINE.encode())
        chunk: list[str] = []
        for line in lines:
            chunk.append(line)
            if len(chunk) >= _CHUNK_ROWS:
                handle.write("".join(chunk).encode())
                chunk.clear()
        handle.write("".join(chunk).encode())
