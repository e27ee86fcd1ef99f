"""Fixtures: a real emulator on a loopback socket, its clock frozen at a known instant."""

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from circlecost_emulator import Emulator, default_organizations

from .helpers import api_client, plain_client

SEED = 7
# Early November 2026: October is complete, within the last year, and not in the future.
NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)
OCTOBER = {"start": "2026-10-01T00:00:00Z", "end": "2026-10-31T23:59:59Z"}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(seed=SEED) as emu:
        emu.clock.freeze(NOW)
        yield emu


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
