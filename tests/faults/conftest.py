"""The fault suite's emulator (seed 17) and settings (a short lock timeout), and the summary table
printed after the run. The emulator, the settings and the isolated environment come from
tests/conftest.py."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from circlecost.settings import Settings
from tests.faults.support import SCOREBOARD


@pytest.fixture(scope="module")
def emulator_options(emulator_options: dict[str, Any]) -> dict[str, Any]:
    return {**emulator_options, "seed": 17}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A writer that finds the store locked gives up after 5 s, sooner than by default."""
    return replace(settings, lock_timeout=5.0)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    lines = SCOREBOARD.lines()
    if not lines:
        return
    terminalreporter.section("fault and abuse suite")
    for line in lines:
        terminalreporter.write_line(line)
