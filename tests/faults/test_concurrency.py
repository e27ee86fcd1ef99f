"""Two processes importing into one store at once: a `service` sync in this process and a
`circlecost sync` in another. Each finishes or fails with the locked-store message; the store
ends with every row exactly once."""

from __future__ import annotations

import subprocess
from dataclasses import replace
from datetime import timedelta

import pytest

from circlecost import service
from circlecost.settings import Settings
from circlecost.store import StoreLockedError
from circlecost_emulator import Emulator
from circlecost_emulator.request_log import USAGE_EXPORT_CREATE
from tests.faults.support import (
    CIRCLECOST,
    SCOREBOARD,
    Snapshot,
    assert_exactly_once,
    cli_env,
    integration_inputs,
    served,
    store_file,
    total,
)
from tests.support import org_and_token

LOCKED = "is being written by"


# Each export takes two seconds, so that both processes are mid-import at the same time.
@pytest.mark.emulator(seed=29, job_delay=2.0)
def test_an_import_here_and_a_sync_in_another_process_lose_and_duplicate_nothing(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    settings = replace(
        settings,
        imports=replace(
            settings.imports,
            poll_every=timedelta(seconds=0.2),
            posts_per_hour=1000,
            gets_per_hour=1000,
        ),
    )
    integration_id, _ = service.create_integration(settings, integration_inputs(org_id, token))
    store = settings.store()
    before = Snapshot.of(store, integration_id)
    posts_before = emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_CREATE)
    env = cli_env(
        emulator,
        store_file(settings),
        token,
        CIRCLECOST_POLL_SECONDS="0.2",
        CIRCLECOST_QUOTA_PER_HOUR="1000",
    )

    with subprocess.Popen(
        [str(CIRCLECOST), "sync", "--wait"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as other:
        try:
            here = service.sync_integrations(settings, token)["status"]
        except StoreLockedError as locked:
            here = f"locked: {locked.message}"
        out, err = other.communicate(timeout=120)

    got = assert_exactly_once(emulator, store, integration_id)
    there = "Stable" if other.returncode == 0 and "Stable" in out else f"exit {other.returncode}"
    SCOREBOARD.fault(
        "two imports at once (here + subprocess)",
        f"(a) exact rows; here: {here[:6]}, there: {there}",
        total(served(emulator, store, integration_id)),
        got,
    )
    assert here == "Stable" or (here.startswith("locked: ") and LOCKED in here)
    assert there == "Stable" or (other.returncode == 1 and LOCKED in err), err
    assert "Stable" in (here, there)  # at least one of them got through
    assert got.count >= total(before.rows).count
    posts = emulator.requests.count(org_id=org_id, kind=USAGE_EXPORT_CREATE) - posts_before
    assert 1 <= posts <= 2  # the current month, asked for by one process or by both
