"""`kill -9` of `pulumi up` at several points of a create, then the same `up` again, as CI
re-runs a cancelled job: it succeeds without `adopt`, `pulumi cancel` or any other manual step,
the rows are exact, and no process of the killed run is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.e2e.stack_support import POLICY_PACK, ReferenceStack, reference_stack
from tests.e2e.test_resources import bot_token, entry, rows_in_store, rows_served
from tests.pulumi_support import pulumi_root

Moment = Callable[[Path], bool]


def integration_recorded(store: Path) -> bool:
    return store.exists() and bool(Store(store).list_integrations())


def first_window_loaded(store: Path) -> bool:
    if not integration_recorded(store):
        return False
    s = Store(store)
    (record,) = s.list_integrations()
    return any(planned.state == "loaded" for planned in s.list_windows(record.id))


def binding_waits(store: Path) -> bool:
    """The workspace exists and the binding waits for the import to be Stable."""
    return first_window_loaded(store) and bool(Store(store).list_workspaces())


MOMENTS = {
    "integration-recorded": integration_recorded,
    "first-window-loaded": first_window_loaded,
    "binding-waits": binding_waits,
}


@pytest.fixture
def slow_emulator() -> Iterator[Emulator]:
    # Each export takes 2 s of the emulator's (real-time) clock: a create lasts long enough to
    # be killed at each moment.
    with Emulator(seed=21, job_delay=2.0, quota_per_hour=None) as running:
        yield running


def start_up(stack: ReferenceStack) -> subprocess.Popen[str]:
    """`pulumi up` as a CI job runs it, in its own process so that it can be killed."""
    command = [
        str(pulumi_root() / "bin" / "pulumi"),
        "up",
        "--yes",
        "--non-interactive",
        "--stack",
        "test",
        "--policy-pack",
        POLICY_PACK,
    ]
    return subprocess.Popen(
        command,
        cwd=stack.project.work_dir,
        env={**os.environ, **stack.project.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(moment: Moment, store: Path, process: subprocess.Popen[str], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if moment(store):
            return
        if process.poll() is not None:
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"pulumi up ended before the moment came:\n{output}")
        time.sleep(0.1)
    pytest.fail(f"the moment did not come within {seconds} s")


def descendants(pid: int) -> list[psutil.Process]:
    children: list[psutil.Process] = psutil.Process(pid).children(recursive=True)
    return children


@pytest.mark.parametrize("moment", list(MOMENTS), ids=list(MOMENTS))
def test_up_killed_mid_create_then_run_again_succeeds_with_exact_rows(
    slow_emulator: Emulator, tmp_path: Path, moment: str
) -> None:
    emulator = slow_emulator
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0, backfill_months=3)],
        workspaces=[{"name": "platform", "integrations": ["acme"]}],
        tokens={"acme": bot_token(emulator, 0)},
    )
    # Polls every 0.2 s while the export takes 2 s: more GETs than CircleCI's 10 an hour.
    stack.project.env["CIRCLECOST_QUOTA_PER_HOUR"] = "1000"
    stack.stack.workspace.env_vars = {**stack.stack.workspace.env_vars, **stack.project.env}
    stack.preview(policy_packs=[POLICY_PACK])  # the pull request's preview passes
    running = start_up(stack)
    try:
        wait_for(MOMENTS[moment], stack.store, running, seconds=120)
        children = descendants(running.pid)
        running.send_signal(signal.SIGKILL)
        running.wait(timeout=10)
    finally:
        if running.poll() is None:
            running.kill()
        if running.stdout:
            running.stdout.close()
    # The killed CLI's language host, program and provider end by themselves.
    _gone, alive = psutil.wait_procs(children, timeout=15)
    assert alive == [], [process.cmdline() for process in alive]

    stack.up()  # CI runs the job again: no adopt, no cancel, no refresh

    (record,) = Store(stack.store).list_integrations()
    assert record.status == "Stable"
    assert rows_in_store(stack.store) == rows_served(emulator, stack.store, "acme")
    assert "acme" in stack.stack.outputs()["integrations"].value
    again = stack.preview(policy_packs=[POLICY_PACK])
    assert set(again.change_summary) <= {"same"}  # nothing left to do
