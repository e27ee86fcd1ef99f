"""Per-organization request quotas over a sliding hour of the emulator clock.

A request spends a slot when it is admitted; a request answered 429 spends none, so a client
that honours Retry-After gets through as soon as the oldest admitted request is an hour old.
"""

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

WINDOW: Final = timedelta(hours=1)


@dataclass(frozen=True)
class QuotaDecision:
    allowed: bool
    limit: int | None
    remaining: int = 0
    reset_seconds: int = 0

    def headers(self) -> dict[str, str]:
        """Rate-limit headers in both spellings; Reset is in seconds from now in both."""
        if self.limit is None:
            return {}
        values = {
            "Limit": str(self.limit),
            "Remaining": str(self.remaining),
            "Reset": str(self.reset_seconds),
        }
        headers = {f"{prefix}RateLimit-{k}": v for prefix in ("", "X-") for k, v in values.items()}
        if not self.allowed:
            headers["Retry-After"] = str(max(1, self.reset_seconds))
        return headers


class QuotaTracker:
    """Counts admitted requests per (organization, HTTP method); a None limit means unlimited."""

    def __init__(self, limits: dict[str, int | None]) -> None:
        self._limits = limits
        self._lock = threading.Lock()
        self._admitted: dict[tuple[str, str], list[datetime]] = {}

    def acquire(self, org_id: str, method: str, now: datetime) -> QuotaDecision:
        limit = self._limits.get(method)
        if limit is None:
            return QuotaDecision(allowed=True, limit=None)
        with self._lock:
            # A list, not a deque: the clock may be set back, so times are not always in order.
            live = [t for t in self._admitted.get((org_id, method), []) if t > now - WINDOW]
            allowed = len(live) < limit
            if allowed:
                live.append(now)
            self._admitted[(org_id, method)] = live
        reset = math.ceil((min(live) + WINDOW - now).total_seconds()) if live else 0
        return QuotaDecision(allowed, limit, max(0, limit - len(live)), max(0, reset))
