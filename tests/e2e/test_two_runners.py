"""Two CI runners, one shared store: what the GitOps flow needs from a store outside the runner.

Runner A and runner B are two copies of the project folder (as two fresh clones are) that share
only the Pulumi file backend and a DuckLake store: its catalog in a throwaway PostgreSQL server,
its data in a bucket of an S3-compatible server, both started by the tests on loopback. The
emulator replays the sample export, so the figures are expected.json's.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from circlecost.engine import SharedStore
from circlecost.store import Store
from circlecost_emulator import Emulator
from circlecost_emulator.request_log import USAGE_EXPORT_CREATE, USAGE_EXPORT_GET
from tests.clock import child_env
from tests.e2e.stack_support import (
    FAST_POLLING,
    POLICY_PACK,
    circlecost_resources,
    fresh_runner,
    reference_stack,
)
from tests.engines import store_env
from tests.faults.support import CIRCLECOST
from tests.support import EXPECTED, sample_replay_dir

NAME = "sample"


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    """The emulator replays the sample export, at CircleCI's quota."""
    with Emulator(replay_dir=sample_replay_dir(tmp_path), quota_per_hour=10) as running:
        yield running


@pytest.fixture
def shared(postgres_server: Any, s3_bucket: Any, monkeypatch: pytest.MonkeyPatch) -> SharedStore:
    """A shared store, created once by a person with `circlecost store init`, as the README
    says; this process and every CLI run get the bucket's AWS_* variables."""
    for name, value in s3_bucket.env.items():
        monkeypatch.setenv(name, value)
    store = SharedStore(postgres_server.fresh_database("runners"), s3_bucket.url)
    created = circlecost(store, "store", "init", "--owner", "ana", "--data-path", s3_bucket.url)
    assert created.returncode == 0, created.stderr
    assert "ana is its Organization Owner" in created.stdout
    return store


def circlecost(store: SharedStore, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        **child_env(),
        **store_env(store),
        **extra,
    }
    try:
        return subprocess.run(
            [str(CIRCLECOST), *args], env=env, capture_output=True, text=True, timeout=120
        )
    except subprocess.TimeoutExpired as late:
        raise AssertionError(
            f"circlecost {' '.join(args)} did not finish: {late.stderr!r}"
        ) from None


def entry(**extra: object) -> dict[str, object]:
    return {
        "name": NAME,
        "organizationId": EXPECTED["organization_id"],
        "backfillMonths": 1,
        "tokenExpiresOn": "2027-01-15",
        **extra,
    }


def usage_figures(store: Store) -> tuple[int, Decimal, int]:
    """Usage rows, the credits of their line items, and rows stored more than once."""
    with store.reader() as con:
        row = con.execute(
            "SELECT count(*), count(*) - count(DISTINCT (window_start, source_part, source_line)) "
            "FROM usage"
        ).fetchone()
        credits = con.execute("SELECT sum(credits) FROM costs").fetchone()
    assert row is not None
    assert credits is not None
    return int(row[0]), Decimal(credits[0] or 0), int(row[1])


def test_two_runners_share_costs_roles_and_quota_through_one_store(
    emulator: Emulator,
    shared: SharedStore,
    tmp_path: Path,
    s3_bucket: Any,
    postgres_server: Any,
) -> None:
    token = emulator.tokens["admin"]
    runner_a = reference_stack(
        tmp_path / "a",
        emulator.base_url,
        integrations=[entry()],
        workspaces=[{"name": "platform", "integrations": [NAME]}],
        tokens={NAME: token},
        shared_store=shared,
        env=s3_bucket.env,
    )
    store = Store(shared)

    # Runner A imports the sample.
    outputs = runner_a.up().outputs["integrations"].value[NAME]
    assert outputs["status"] == "Stable", outputs["detail"]
    expected_credits = Decimal(str(EXPECTED["total_credits_from_components"]))
    assert usage_figures(store) == (EXPECTED["usage_rows"], expected_credits, 0)
    resources = circlecost_resources(runner_a)
    assert resources == sorted([NAME, f"platform-{NAME}", "workspace-platform"])

    # Runner B: a fresh clone, no store of its own. Its preview sees no change, and its refresh
    # keeps every resource and its figures (an empty store of its own made Pulumi forget them).
    runner_b = fresh_runner(runner_a, tmp_path / "b")
    preview = runner_b.stack.preview(policy_packs=[POLICY_PACK], color="never")
    assert set(preview.change_summary) == {"same"}
    runner_b.refresh()
    assert circlecost_resources(runner_b) == resources
    refreshed = runner_b.stack.outputs()["integrations"].value[NAME]
    assert refreshed["line_items"] == outputs["line_items"] == EXPECTED["cost_line_items"]

    # At the same time: A widens the backfill (a new window to import) and B's CI job runs
    # `circlecost sync` (the daily refresh, which loads the recent windows again).
    runner_a.set_integrations([entry(backfillMonths=2)])
    failures: list[BaseException] = []

    def up_a() -> None:
        try:
            runner_a.up()
        except BaseException as err:  # reported below, with B's outcome
            failures.append(err)

    thread = threading.Thread(target=up_a)
    thread.start()
    sync = circlecost(
        shared,
        "sync",
        "--wait",
        CIRCLECI_TOKEN=token,
        CIRCLECI_URL=emulator.base_url,
        CIRCLECOST_ACTOR="ana",
        CIRCLECOST_ALLOW_LOOPBACK_DOWNLOADS="true",
        **FAST_POLLING,
    )
    thread.join(timeout=600)
    assert not thread.is_alive()
    assert failures == [], runner_a.text()[-3000:]
    assert sync.returncode == 0, sync.stderr

    assert usage_figures(store) == (EXPECTED["usage_rows"], expected_credits, 0)
    org = EXPECTED["organization_id"]
    with store.reader() as con:
        counted = dict(
            con.execute(
                "SELECT kind, count(*) FROM quota_requests WHERE org_id = ? GROUP BY ALL", [org]
            ).fetchall()
        )
    served = {
        "POST": emulator.requests.count(org_id=org, kind=USAGE_EXPORT_CREATE),
        "GET": emulator.requests.count(org_id=org, kind=USAGE_EXPORT_GET),
    }
    assert counted == served  # both runners counted every request in the one store
    assert emulator.requests.count(org_id=org, status=429) == 0
    assert max(served.values()) <= 10

    # B's preview as someone who holds no owner role fails the owner-role policy: a shared
    # store never makes an unknown actor its owner.
    runner_b.set("circlecost:actor", "mallory")
    with pytest.raises(auto.CommandError) as refused:
        runner_b.stack.preview(policy_packs=[POLICY_PACK], color="never")
    assert "circlecost-owner-role" in str(refused.value)
    assert "'mallory' holds no role" in str(refused.value)

    # The catalog is lost and made again, empty (or the store setting points elsewhere): B's
    # refresh fails naming both stores, and the Pulumi state keeps every resource.
    runner_b.set("circlecost:actor", "ana")
    own = store.identity()
    database = shared.catalog.rsplit("dbname=", 1)[1].split()[0]
    postgres_server.psql(f"DROP DATABASE {database} WITH (FORCE)")
    postgres_server.psql(f"CREATE DATABASE {database}")
    with pytest.raises(auto.CommandError) as mismatch:
        runner_b.refresh()
    assert f"lives in store {own}; this run uses {shared.name}, which does not exist" in str(
        mismatch.value
    )
    assert circlecost_resources(runner_b) == resources
