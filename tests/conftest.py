"""Fixtures every test gets: an environment a developer's shell cannot change, and one clock."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime

import pytest
import time_machine

from tests.clock import SUITE_NOW

# Variables that change what circlecost, the CircleCI client or the Pulumi CLI do.
ISOLATED_PREFIXES = ("CIRCLECOST_", "CIRCLECI_", "PULUMI_")

Travel = Callable[[datetime], None]


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ISOLATED_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _suite_clock(time_machine: time_machine.TimeMachineFixture) -> None:
    """Every test starts at SUITE_NOW; the clock ticks from there, so waits still pass."""
    time_machine.move_to(SUITE_NOW, tick=True)


@pytest.fixture
def travel(time_machine: time_machine.TimeMachineFixture) -> Travel:
    """travel(when): move this process's clock to `when` (ticking on from there)."""

    def move(when: datetime) -> None:
        time_machine.move_to(when, tick=True)

    return move
