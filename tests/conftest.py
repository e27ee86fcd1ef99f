"""Fixtures every test gets: an environment a developer's shell cannot change, and one clock.

And, for the tests that ask: a throwaway PostgreSQL cluster and an S3-compatible server
(tests/services.py), one of each per pytest session, so per pytest-xdist worker too.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
import time_machine

from tests.clock import SUITE_NOW
from tests.services import (
    POSTGRES_PACKAGE_HINT,
    PostgresServer,
    S3Bucket,
    S3Server,
    ServiceError,
    find_postgres_bin,
)

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
