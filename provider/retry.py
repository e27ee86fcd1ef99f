"""How hard circlecost's CircleCI client retries, and what CircleCI's answers say about waiting:
`Retry-After` (delay seconds or an HTTP-date) and the `RateLimit-*` / `X-RateLimit-*` headers."""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

import httpx

__all__ = [
    "DEFAULT_RETRY_POLICY",
    "RateLimitInfo",
    "RetryPolicy",
    "parse_rate_limit_headers",
    "parse_retry_after",
]

# X-RateLimit-Reset is an epoch timestamp on some APIs and a delay on others; no delay is this big.
_EPOCH_THRESHOLD_SECONDS: Final = 1_000_000_000
_DELAY_SECONDS: Final = re.compile(r"\d+(\.\d+)?")
_RATE_LIMIT_PREFIXES: Final = ("RateLimit-", "X-RateLimit-")


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """How hard to retry. `max_attempts` counts the first try; delays are in seconds."""

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25
    max_retry_after: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("base_delay, max_delay and max_retry_after must not be negative")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, got {self.jitter}")

    def backoff_delay(self, retry_number: int, random_fraction: float) -> float:
        """Delay before retry number `retry_number` (1 for the first retry).

        Jitter only shortens the delay, so `max_delay` stays a hard cap while clients that
        failed together still spread out. `random_fraction` is in [0, 1).
        """
        capped = min(self.max_delay, self.base_delay * 2.0 ** (retry_number - 1))
        return capped * (1 - self.jitter * random_fraction)


DEFAULT_RETRY_POLICY: Final = RetryPolicy()


@dataclass(frozen=True, slots=True)
class RateLimitInfo:
    """What the last response said about the rate limit; None where it said nothing."""

    limit: int | None
    remaining: int | None
    reset_seconds: float | None


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delay seconds or HTTP-date); None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if _DELAY_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_rate_limit_headers(
    headers: httpx.Headers, *, now: float | None = None
) -> RateLimitInfo | None:
    """Merge `RateLimit-*` and `X-RateLimit-*`; where they disagree the stricter value holds."""
    limits = [_leading_int(headers.get(f"{prefix}Limit")) for prefix in _RATE_LIMIT_PREFIXES]
    remaining = [_leading_int(headers.get(f"{prefix}Remaining")) for prefix in _RATE_LIMIT_PREFIXES]
    resets = [
        _reset_delay(headers.get(f"{prefix}Reset"), now or time.time())
        for prefix in _RATE_LIMIT_PREFIXES
    ]
    info = RateLimitInfo(_lowest(limits), _lowest(remaining), _highest(resets))
    if info == RateLimitInfo(None, None, None):
        return None
    return info


def _leading_int(value: str | None) -> int | None:
    # The IETF draft allows "10, 10;w=3600": the first number is the limit that applies now.
    if value is None:
        return None
    first = re.split(r"[,;]", value, maxsplit=1)[0].strip()
    return int(first) if first.isdigit() else None


def _reset_delay(value: str | None, now: float) -> float | None:
    if value is None or not _DELAY_SECONDS.fullmatch(value.strip()):
        return None
    seconds = float(value)
    if seconds >= _EPOCH_THRESHOLD_SECONDS:
        return max(0.0, seconds - now)
    return seconds


def _lowest(values: Sequence[int | None]) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _highest(values: Sequence[float | None]) -> float | None:
    # The later reset is the safe one to wait for.
    present = [v for v in values if v is not None]
    return max(present) if present else None
