"""The emulator's clock: real UTC time plus an offset, or a frozen instant.

Every time-dependent rule of the emulator (job states, link expiry, quotas, the export window
checks) reads this clock, so a test can move an hour forward instead of waiting one.
"""

import threading
from datetime import UTC, datetime, timedelta


def as_utc(when: datetime) -> datetime:
    """Return `when` as an aware UTC datetime; a naive value is taken to be UTC already."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


class EmulatorClock:
    """`now()` is real UTC time + offset, unless frozen, in which case it only moves when told."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return datetime.now(UTC) + self._offset

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen_at is not None

    def advance(self, seconds: float) -> datetime:
        """Move the clock forward (or back, with a negative value) and return the new time."""
        step = timedelta(seconds=seconds)
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += step
            else:
                self._offset += step
        return self.now()

    def set(self, when: datetime, *, frozen: bool | None = None) -> datetime:
        """Jump to `when`. The clock keeps ticking from there unless `frozen` (None: unchanged)."""
        target = as_utc(when)
        with self._lock:
            keep_frozen = self._frozen_at is not None if frozen is None else frozen
            if keep_frozen:
                self._frozen_at = target
            else:
                self._frozen_at = None
                self._offset = target - datetime.now(UTC)
        return self.now()

    def freeze(self, when: datetime | None = None) -> datetime:
        """Stop the clock at `when` (default: the current emulator time)."""
        return self.set(self.now() if when is None else when, frozen=True)

    def unfreeze(self) -> datetime:
        """Let the clock tick again from the instant it was frozen at."""
        return self.set(self.now(), frozen=False)
