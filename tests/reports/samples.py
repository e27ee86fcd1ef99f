"""An independent reading of the two sample parts, to check report figures by hand.

It does not use the loader: it walks each part character by character with the rules of the
export's dialect (shared/circleci-api.md): `\\N` or an empty field is NULL, a backslash outside
quotes makes the next character literal (`feature\\,comma`), a field that starts with `"` is
RFC 4180 quoted (`""` inside is one quote), and a `"` elsewhere is an ordinary character.
"""

from __future__ import annotations

import gzip
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from tests.support import SAMPLE_PARTS

WINDOW_START = date(2026, 10, 1)

# Written out here rather than imported, so that a wrong mapping in the code shows up.
SERVICES = {
    "COMPUTE_CREDITS": "Compute",
    "DLC_CREDITS": "DLC",
    "USER_CREDITS": "Users",
    "STORAGE_CREDITS": "Storage",
    "NETWORK_CREDITS": "Network",
    "LEASE_CREDITS": "Lease",
    "LEASE_OVERAGE_CREDITS": "Lease Overage",
    "IPRANGES_CREDITS": "IP Ranges",
}


@dataclass(frozen=True)
class Item:
    """One cost line item, with the dimensions the tests group and filter by."""

    date: date
    service: str
    account: str | None
    branch: str | None
    category: str | None
    resource: str | None
    credits: Decimal


def records(text: str) -> Iterator[list[str | None]]:
    fields: list[str | None] = []
    value: list[str] = []
    index, raw_start = 0, True
    quoted = was_quoted = False
    while index < len(text):
        char = text[index]
        index += 1
        if raw_start and char == '"':
            quoted, raw_start = True, False
            continue
        raw_start = False
        if quoted:
            if char == '"' and text[index : index + 1] == '"':
                value.append('"')
                index += 1
            elif char == '"':
                quoted = False
                was_quoted = True  # a quoted field is text, even when empty
            else:
                value.append(char)
        elif char == "\\":
            value.append("\\" + text[index])  # kept escaped until the field ends
            index += 1
        elif char in ",\n":
            fields.append(finish(value, was_quoted))
            value, raw_start, was_quoted = [], True, False
            if char == "\n":
                yield fields
                fields = []
        else:
            value.append(char)
    if fields or value:
        fields.append(finish(value, was_quoted))
        yield fields


def finish(value: list[str], quoted: bool) -> str | None:
    if quoted:
        return "".join(value)
    if value == ["\\N"] or not value:
        return None
    return "".join(piece[1:] if piece.startswith("\\") else piece for piece in value)


def usage_rows(parts: list[Path] = SAMPLE_PARTS) -> list[dict[str, str | None]]:
    rows = []
    for part in parts:
        with gzip.open(part, "rt", encoding="utf-8", newline="") as stream:
            lines = records(stream.read())
            header = [name or "" for name in next(lines)]
            rows += [dict(zip(header, fields, strict=True)) for fields in lines if fields != [None]]
    return rows


def usage_date(row: dict[str, str | None]) -> date:
    for name in ("JOB_RUN_DATE", "JOB_RUN_STARTED_AT", "PIPELINE_CREATED_AT"):
        value = row[name]
        if value:
            return datetime.fromisoformat(value[:10]).date()
    return WINDOW_START


def items(parts: list[Path] = SAMPLE_PARTS) -> list[Item]:
    result = []
    for row in usage_rows(parts):
        os, executor = row["OPERATING_SYSTEM"], row["EXECUTOR"]
        category = f"{os.lower()} {executor.lower()}" if os and executor else None
        for column, service in SERVICES.items():
            credits = Decimal(row[column] or 0)
            if credits != 0:
                result.append(
                    Item(
                        usage_date(row),
                        service,
                        row["PROJECT_NAME"],
                        row["VCS_BRANCH"],
                        category,
                        row["JOB_NAME"],
                        credits,
                    )
                )
    return result


Key = TypeVar("Key")


def credits_by(
    key: Callable[[Item], Key], keep: Callable[[Item], bool] = lambda item: True
) -> dict[Key, Decimal]:
    """Credits of the sample line items that `keep` selects, summed per `key`."""
    sums: dict[Key, Decimal] = defaultdict(Decimal)
    for item in items():
        if keep(item):
            sums[key(item)] += item.credits
    return dict(sums)


def october_days(first: int, last: int) -> Decimal:
    """The sample credits from `first` to `last` October (the samples hold October only)."""
    sums = credits_by(lambda item: True, lambda item: first <= item.date.day <= last)
    return sums.get(True, Decimal(0))
