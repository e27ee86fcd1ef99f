"""The fault suite's fixtures: an emulator on loopback, service settings with fast polling and a
short lock timeout, an isolated environment, and the summary table printed after the run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from circlecost import service
from circlecost_emulator import Emulator
from tests.faults.support import FAST, SCOREBOARD


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=17, job_delay=0.0, quota_per_hour=None) as running:
        yield running


@pytest.fixture
def settings(emulator: Emulator, tmp_path: Path) -> service.Settings:
    return service.Settings(
        store_location=tmp_path / "store" / "costs.duckdb",
        circleci_url=emulator.base_url,
        actor="ana",
        allow_loopback_downloads=True,
        imports=FAST,
        create_timeout=timedelta(seconds=60),
        binding_timeout=timedelta(seconds=0),
        lock_timeout=5.0,
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = SCOREBOARD.lines()
    if not lines:
        return
    terminalreporter.section("fault and abuse suite")
    for line in lines:
        terminalreporter.write_line(line)
