"""Fault switches: the misbehaviour a client of CircleCI must survive, on demand.

Counters consume themselves: each time the server applies a counted fault it takes one unit, so
`server_errors=2` breaks exactly the next two API requests and then the emulator is healthy again.

| name | unit consumed by | effect |
|---|---|---|
| `server_errors` | an API request | 500, 502, 503 in turn, JSON body |
| `rate_limit_storm` | an API request | 429, `Retry-After: <storm_retry_after>`, no quota spent |
| `fail_jobs` | a usage-export POST | the new job ends `failed` with an `error_reason` |
| `null_urls_polls` | a poll of a completed job | `download_urls` is null on that poll |
| `truncate_gzip` | a part download | the gzip body is cut in half |
| `non_gzip_part` | a part download | the part is sent as plain CSV, not gzip |
| `wrong_columns` | a part download | the header names `TOTAL_CREDIT` instead of `TOTAL_CREDITS` |
| `expire_links_now` | the next part download | every link issued so far (that one too) gets 403 |

`slow_seconds` is a setting, not a counter: every API and download response waits that long
until it is set back to 0. `storm_retry_after` is the Retry-After a storm 429 carries.
"""

import threading
from collections.abc import Mapping
from typing import Final

COUNTED_FAULTS: Final[tuple[str, ...]] = (
    "server_errors",
    "rate_limit_storm",
    "fail_jobs",
    "null_urls_polls",
    "truncate_gzip",
    "non_gzip_part",
    "wrong_columns",
    "expire_links_now",
)
FAULT_SETTINGS: Final[tuple[str, ...]] = ("slow_seconds", "storm_retry_after")
FAULT_NAMES: Final[tuple[str, ...]] = COUNTED_FAULTS + FAULT_SETTINGS

SERVER_ERROR_STATUSES: Final[tuple[int, ...]] = (500, 502, 503)


class FaultError(ValueError):
    """A fault switch was given an unknown name or a value of the wrong type."""


FaultValue = int | float | bool


def _count(name: str, value: object) -> int:
    # JSON `true` means "once", so a boolean switch and a counter share one spelling.
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value >= 0:
        return value
    raise FaultError(f"fault {name!r} takes a count >= 0 or true/false, not {value!r}")


def _seconds(name: str, value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise FaultError(f"fault setting {name!r} takes a number of seconds >= 0, not {value!r}")


class Faults:
    """The one small, thread-safe object that holds every fault switch of an emulator."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTED_FAULTS, 0)
        self._slow_seconds = 0.0
        self._storm_retry_after = 1
        self._server_error_turn = 0

    def set(self, **changes: FaultValue) -> None:
        """Set switches by name, e.g. `faults.set(server_errors=2, slow_seconds=0.5)`."""
        self.update(changes)

    def update(self, changes: Mapping[str, object]) -> None:
        """Validate every change first, then apply them all (a bad request changes nothing)."""
        unknown = sorted(set(changes) - set(FAULT_NAMES))
        if unknown:
            raise FaultError(f"unknown fault {unknown}; known: {', '.join(FAULT_NAMES)}")
        counts = {k: _count(k, v) for k, v in changes.items() if k in COUNTED_FAULTS}
        slow = (
            _seconds("slow_seconds", changes["slow_seconds"]) if "slow_seconds" in changes else None
        )
        retry = (
            int(_seconds("storm_retry_after", changes["storm_retry_after"]))
            if "storm_retry_after" in changes
            else None
        )
        with self._lock:
            self._counts.update(counts)
            if slow is not None:
                self._slow_seconds = slow
            if retry is not None:
                self._storm_retry_after = retry

    def clear(self) -> None:
        """Switch every fault off."""
        with self._lock:
            self._counts = dict.fromkeys(COUNTED_FAULTS, 0)
            self._slow_seconds = 0.0

    def take(self, name: str) -> bool:
        """Consume one unit of a counted fault; True when the caller must apply it."""
        with self._lock:
            if self._counts[name] <= 0:
                return False
            self._counts[name] -= 1
            return True

    def take_server_error(self) -> int | None:
        """The status of the next injected server error, or None when none is pending."""
        with self._lock:
            if self._counts["server_errors"] <= 0:
                return None
            self._counts["server_errors"] -= 1
            status = SERVER_ERROR_STATUSES[self._server_error_turn % len(SERVER_ERROR_STATUSES)]
            self._server_error_turn += 1
            return status

    @property
    def slow_seconds(self) -> float:
        with self._lock:
            return self._slow_seconds

    @property
    def storm_retry_after(self) -> int:
        with self._lock:
            return self._storm_retry_after

    def snapshot(self) -> dict[str, FaultValue]:
        """The current value of every switch, as served by `GET /_emulator/faults`."""
        with self._lock:
            state: dict[str, FaultValue] = dict(self._counts)
            state["slow_seconds"] = self._slow_seconds
            state["storm_retry_after"] = self._storm_retry_after
            return state
