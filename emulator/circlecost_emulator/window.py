"""Validation of a usage-export request body, with the window rules CircleCI applies."""

import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from circlecost_emulator.clock import as_utc

UNEXPECTED_BODY: Final = "Unexpected request body provided."
MAX_SPAN: Final = timedelta(days=31)
_ALLOWED_FIELDS: Final = frozenset({"start", "end", "shared_org_ids"})
# RFC 3339 date-time: a 'T' separator and an explicit zone are required.
_RFC3339: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})"
)


class WindowError(ValueError):
    """The request is refused with 400 and this message."""


@dataclass(frozen=True)
class ExportWindow:
    start: datetime
    end: datetime
    shared_org_ids: tuple[str, ...] = ()


def rfc3339(when: datetime) -> str:
    return as_utc(when).isoformat().replace("+00:00", "Z")


def parse_rfc3339(name: str, value: object) -> datetime:
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise WindowError(f"{name} must be an RFC 3339 date-time, e.g. 2026-10-01T00:00:00Z.")
    # fromisoformat takes at most 6 fractional digits; finer precision means nothing here.
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.upper())
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError as err:
        raise WindowError(f"{name} is not a valid date-time: {err}.") from err


def one_year_before(now: datetime) -> datetime:
    try:
        return now.replace(year=now.year - 1)
    except ValueError:  # 29 February
        return now.replace(year=now.year - 1, day=28)


def _shared_org_ids(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise WindowError("shared_org_ids must be a list of organization UUIDs.")
    try:
        return tuple(str(uuid.UUID(v)) for v in value)
    except ValueError as err:
        raise WindowError("shared_org_ids must be a list of organization UUIDs.") from err


def parse_export_request(body: bytes, now: datetime) -> ExportWindow:
    """Read and check a POST body; raise WindowError with the message the 400 carries."""
    try:
        payload = json.loads(body or b"null")
    except (ValueError, UnicodeDecodeError) as err:
        raise WindowError(UNEXPECTED_BODY) from err
    if not isinstance(payload, dict) or set(payload) - _ALLOWED_FIELDS:
        raise WindowError(UNEXPECTED_BODY)
    if "start" not in payload or "end" not in payload:
        raise WindowError("start and end are required.")
    window = ExportWindow(
        parse_rfc3339("start", payload["start"]),
        parse_rfc3339("end", payload["end"]),
        _shared_org_ids(payload.get("shared_org_ids")),
    )
    check_window(window, as_utc(now))
    return window


def check_window(window: ExportWindow, now: datetime) -> None:
    if window.start > window.end:
        raise WindowError("start must not be after end.")
    if window.end - window.start > MAX_SPAN:
        raise WindowError("end must be no more than 31 days after start.")
    if window.start < one_year_before(now):
        raise WindowError("start must be no more than one year ago.")
    if window.end > now:
        raise WindowError("end must not be in the future.")
