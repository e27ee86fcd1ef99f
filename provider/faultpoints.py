"""Named points in an import where the fault suite kills the process (SIGKILL).

`CIRCLECOST_CRASH_AT=<point>` (read once, by circlecost.settings) gives the store and the
import engine a crash hook that kills the process when it reaches that point, so the suite can
prove that a crash at any step of an import loses and duplicates nothing. Every other process
runs with `never_crash`.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Final

POINTS: Final = ("after_job_recorded", "after_download", "mid_insert", "before_mark_loaded")

CrashHook = Callable[[str], None]


def never_crash(_point: str) -> None:
    """The crash hook of every process but the fault suite's."""


def crash_at(point: str) -> CrashHook:
    """A crash hook that kills this process (no cleanup runs) when it reaches `point`."""

    def reached(where: str) -> None:
        if where == point:
            os.kill(os.getpid(), signal.SIGKILL)

    return reached
