"""The service tests' emulator (seed 11) and store: each test runs on both engines. The emulator
and the settings pointing at it come from tests/conftest.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from circlecost.engine import SharedStore
from circlecost.store import Store
from tests import engines


@pytest.fixture(scope="module")
def emulator_options(emulator_options: dict[str, Any]) -> dict[str, Any]:
    return {**emulator_options, "seed": 11}


@pytest.fixture(params=engines.ENGINES)
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Path | SharedStore:
    """A new store on each engine; a shared one is created with ana as its owner (as
    `circlecost store init --owner ana` does), an embedded one adopts ana as its first actor."""
    location = engines.store_location(request, request.param, tmp_path)
    if isinstance(location, SharedStore):
        Store(location).initialize("ana")
    return location
