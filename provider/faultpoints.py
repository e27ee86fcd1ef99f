"""Named points in the import where the fault suite kills the process (SIGKILL).

`CIRCLECOST_CRASH_AT=<point>` makes the process kill itself when it reaches that point, so the
suite can prove that a crash at any step of an import loses and duplicates nothing. Without the
variable, `reached` does nothing.
"""

from __future__ import annotations

import os
import signal

POINTS = ("after_job_recorded", "after_download", "mid_insert", "before_mark_loaded")


def reached(point: str) -> None:
    if os.environ.get("CIRCLECOST_CRASH_AT") == point:
        os.kill(os.getpid(), signal.SIGKILL)
