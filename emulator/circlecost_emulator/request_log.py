"""A record of every request the emulator answered, so tests can check what a client sent."""

import threading
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Final

# Kinds of request, as recorded.
ME: Final = "me"
COLLABORATIONS: Final = "collaborations"
ORGANIZATION: Final = "organization"
USAGE_EXPORT_CREATE: Final = "usage_export_create"
USAGE_EXPORT_GET: Final = "usage_export_get"
DOWNLOAD: Final = "download"
UNKNOWN: Final = "unknown"


@dataclass(frozen=True)
class RequestRecord:
    at: datetime  # emulator clock, UTC
    method: str
    kind: str
    org_id: str | None
    status: int
    path: str
    token_sent: bool = False  # a Circle-Token or Authorization header came with the request

    def as_dict(self) -> dict[str, object]:
        record = asdict(self)
        record["at"] = self.at.isoformat().replace("+00:00", "Z")
        return record


class RequestLog:
    """Thread-safe, append-only (until cleared) list of RequestRecord."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()

    def records(
        self,
        *,
        org_id: str | None = None,
        method: str | None = None,
        kind: str | None = None,
        status: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[RequestRecord]:
        """Records matching every filter given; `since` is inclusive, `until` exclusive."""
        with self._lock:
            records = list(self._records)
        return [
            r
            for r in records
            if (org_id is None or r.org_id == org_id)
            and (method is None or r.method == method)
            and (kind is None or r.kind == kind)
            and (status is None or r.status == status)
            and (since is None or r.at >= since)
            and (until is None or r.at < until)
        ]

    def count(
        self,
        *,
        org_id: str | None = None,
        method: str | None = None,
        kind: str | None = None,
        status: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> int:
        """How many records match every filter given (same filters as `records`)."""
        matching = self.records(
            org_id=org_id, method=method, kind=kind, status=status, since=since, until=until
        )
        return len(matching)

    def per_hour(
        self, *, org_id: str | None = None, method: str | None = None, kind: str | None = None
    ) -> dict[datetime, int]:
        """Counts by clock hour (UTC, truncated to the hour)."""
        hours = Counter(
            r.at.replace(minute=0, second=0, microsecond=0)
            for r in self.records(org_id=org_id, method=method, kind=kind)
        )
        return dict(sorted(hours.items()))

    def max_per_hour(
        self, *, org_id: str | None = None, method: str | None = None, kind: str | None = None
    ) -> int:
        """The most matching requests within any sliding hour: what a quota would have seen."""
        times = sorted(r.at for r in self.records(org_id=org_id, method=method, kind=kind))
        best, first = 0, 0
        for last, moment in enumerate(times):
            while moment - times[first] >= timedelta(hours=1):
                first += 1
            best = max(best, last - first + 1)
        return best
