"""Fixtures every test gets: an environment a developer's shell cannot change, and one clock.

And, for the tests that ask: a CircleCI emulator on 127.0.0.1 and service settings pointing at it
(tests/support.py), the sample export's figures, and a throwaway PostgreSQL cluster and an
S3-compatible server (tests/services.py), one of each per pytest session, so per pytest-xdist
worker too.

Markers follow from where a test is and what it uses (pytest_collection_modifyitems): `e2e`,
`faults` and `emulator` for the tests in tests/e2e, tests/faults and tests/emulator; `emulator`
too for a test that asks for an emulator fixture, `shared_store` for one that asks for the
PostgreSQL or S3 server or runs on the shared engine.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import time_machine

from circlecost.engine import SharedStore
from circlecost.settings import Settings
from circlecost_emulator import Emulator
from tests.clock import SUITE_NOW
from tests.services import (
    POSTGRES_PACKAGE_HINT,
    PostgresServer,
    S3Bucket,
    S3Server,
    ServiceError,
    find_postgres_bin,
)
from tests.support import EXPECTED, FAST_EMULATOR, emulator_settings, marked_emulator_options

# Variables that change what circlecost, the CircleCI client or the Pulumi CLI do.
ISOLATED_PREFIXES = ("CIRCLECOST_", "CIRCLECI_", "PULUMI_")

Travel = Callable[[datetime], None]

TESTS = Path(__file__).resolve().parent
FOLDER_MARKERS = {
    TESTS / "e2e": pytest.mark.e2e,
    TESTS / "faults": pytest.mark.faults,
    TESTS / "emulator": pytest.mark.emulator,  # the emulator's own tests
}
# Fixtures (direct or not) of a test that needs the PostgreSQL or S3 server.
SHARED_STORE_FIXTURES = {"postgres_server", "s3_service"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks each test by its folder and by the fixtures it asks for (see the docstring)."""
    for item in items:
        marks = [
            mark for folder, mark in FOLDER_MARKERS.items() if item.path.is_relative_to(folder)
        ]
        used = set(getattr(item, "fixturenames", ()))
        if any(name == "emulator" or name.endswith("_emulator") for name in used):
            marks.append(pytest.mark.emulator)
        callspec = getattr(item, "callspec", None)
        params = callspec.params.values() if callspec is not None else ()
        if used & SHARED_STORE_FIXTURES or any(
            isinstance(value, str) and value == "shared" for value in params
        ):
            marks.append(pytest.mark.shared_store)
        for mark in marks:
            if item.get_closest_marker(mark.name) is None:
                item.add_marker(mark)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(ISOLATED_PREFIXES):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _clock_between_tests() -> Iterator[None]:
    """The clock stays on the suite's time from the first test to the last, under each test's
    own travel. Without it, time-machine unpatches the clock when a test's travel ends, and a
    thread the test leaves running (the Pulumi automation API's gRPC threads) that reads the
    clock in that moment fails with "Not currently time-travelling"."""
    with time_machine.travel(SUITE_NOW, tick=True):
        yield


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


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster on 127.0.0.1 for this session. Fails (never skips) without the server
    binaries, so a shared-store test cannot pass by not running."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        pytest.fail(POSTGRES_PACKAGE_HINT, pytrace=False)
    try:
        server = PostgresServer.start(bin_dir)
    except ServiceError as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer, request: pytest.FixtureRequest) -> str:
    """The libpq connection string of a new, empty database (as the `postgres` superuser)."""
    return postgres_server.fresh_database(request.node.name)


@pytest.fixture(scope="session")
def s3_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """moto's S3-compatible server on 127.0.0.1 for this session, stopped at its end."""
    try:
        server = S3Server.start(tmp_path_factory.mktemp("s3-server"))
    except ServiceError as err:
        pytest.fail(str(err), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def s3_server(s3_service: S3Server) -> str:
    """The session's S3 endpoint, `127.0.0.1:PORT`."""
    return s3_service.endpoint


@pytest.fixture
def s3_bucket(s3_service: S3Server, request: pytest.FixtureRequest) -> S3Bucket:
    """A new bucket: `.url` (s3://bucket/store/), `.endpoint` (host:port), `.env` (the AWS_*
    variables a client needs: keys, region, endpoint URL), `.client()` (boto3)."""
    return s3_service.fresh_bucket(request.node.name)


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    """The sample export's figures (tests/data/expected.json)."""
    return EXPECTED


@pytest.fixture(scope="module")
def emulator_options() -> dict[str, Any]:
    """The keyword arguments `emulator` gives Emulator. A folder overrides this fixture (module
    scope); a module or a test changes single options with `pytest.mark.emulator(...)`."""
    return dict(FAST_EMULATOR)


@pytest.fixture
def emulator(
    emulator_options: dict[str, Any], request: pytest.FixtureRequest
) -> Iterator[Emulator]:
    """A CircleCI emulator on 127.0.0.1, for this test alone."""
    with Emulator(**marked_emulator_options(emulator_options, request.node)) as running:
        yield running


@pytest.fixture(scope="module")
def module_emulator(
    emulator_options: dict[str, Any], request: pytest.FixtureRequest
) -> Iterator[Emulator]:
    """One emulator for every test of a module (the module's `emulator(...)` marker applies)."""
    with Emulator(**marked_emulator_options(emulator_options, request.node)) as running:
        yield running


@pytest.fixture
def store_location(tmp_path: Path) -> Path | SharedStore:
    """Where `settings` keeps the store: a new embedded file."""
    return tmp_path / "store" / "costs.duckdb"


@pytest.fixture
def settings(emulator: Emulator, store_location: Path | SharedStore) -> Settings:
    """ana's settings against `emulator`, with fast polling (tests.support.emulator_settings)."""
    return emulator_settings(emulator, store_location)
