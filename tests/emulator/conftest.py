"""Fixtures: the emulator with its own defaults (a quota of 10 an hour), its clock frozen at a
known instant, and clients for it."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from circlecost_emulator import Emulator, default_organizations

from .helpers import NOW, SEED, api_client, plain_client


@pytest.fixture(scope="module")
def emulator_options() -> dict[str, Any]:
    """Not the suite's fast emulator: these tests are about the emulator's own defaults."""
    return {"seed": SEED}


@pytest.fixture
def emulator(emulator: Emulator) -> Emulator:
    emulator.clock.freeze(NOW)
    return emulator


@pytest.fixture
def client(emulator: Emulator) -> Iterator[httpx.Client]:
    """An API client with the admin token."""
    with api_client(emulator) as admin:
        yield admin


@pytest.fixture
def org_id() -> str:
    """The first demo organization of SEED, whether or not the `emulator` fixture runs."""
    return default_organizations(SEED)[0].id


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    """A plain client without any token, as downloads and admin endpoints are called."""
    with plain_client() as plain:
        yield plain
