"""The import ledger, the shared quota, integrations, workspaces, roles and the audit log."""

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from circlecost.store import (
    Integration,
    Store,
    StoreConflictError,
    StoreNotFoundError,
)
from circlecost.vocabulary import token_fingerprint
from tests.engines import store_location
from tests.support import NOVEMBER, OCTOBER, ORG_ID, SAMPLE_PARTS

NOW = datetime(2026, 11, 5, 12, 0, tzinfo=UTC)


def test_planning_windows_is_idempotent(store: Store, integration: Integration) -> None:
    first = store.plan_windows(integration.id, [OCTOBER, NOVEMBER])
    again = store.plan_windows(integration.id, [NOVEMBER, OCTOBER])

    assert (first, again) == ([OCTOBER, NOVEMBER], [])
    assert [task.window for task in store.open_windows(integration.id)] == [OCTOBER, NOVEMBER]
    assert store.window_counts(integration.id) == {"loaded": 0, "open": 2, "failed": 0}


def test_job_recorded_before_polling_is_found_again_after_a_crash(
    store: Store, integration: Integration
) -> None:
    store.plan_windows(integration.id, [OCTOBER])
    store.record_job(integration.id, OCTOBER, "job-1", NOW)
    store.update_job("job-1", "created", NOW, NOW + timedelta(minutes=1))

    resumed = Store(store.location).open_windows(integration.id)

    assert len(resumed) == 1
    task = resumed[0]
    assert (task.window, task.job_id, task.job_state) == (OCTOBER, "job-1", "created")
    assert (task.next_poll_at, task.attempts) == (NOW + timedelta(minutes=1), 1)


def test_job_updates_count_polls_and_keep_the_failure_reason(
    store: Store, integration: Integration
) -> None:
    store.record_job(integration.id, OCTOBER, "job-1", NOW)
    store.update_job("job-1", "created", NOW, NOW + timedelta(minutes=1))
    store.update_job("job-1", "processing", NOW + timedelta(minutes=1), None)
    store.update_job("job-1", "failed", NOW + timedelta(minutes=3), None, error_reason="timeout")

    job = store.get_job("job-1")

    assert job is not None
    assert (job.state, job.polls, job.error_reason, job.download_completed) == (
        "failed",
        2,
        "timeout",
        False,
    )
    with pytest.raises(StoreNotFoundError, match="record_job"):
        store.update_job("job-unknown", "created", NOW, None)


def test_failed_window_is_open_until_it_fails_for_good(
    store: Store, integration: Integration
) -> None:
    store.plan_windows(integration.id, [OCTOBER, NOVEMBER])
    store.replace_window_rows(integration.id, OCTOBER, None, SAMPLE_PARTS)

    store.fail_window(integration.id, NOVEMBER, "download failed", final=False)
    retrying = store.window_counts(integration.id)
    store.fail_window(integration.id, NOVEMBER, "CircleCI refused it", final=True)

    assert retrying == {"loaded": 1, "open": 1, "failed": 0}
    assert store.window_counts(integration.id) == {"loaded": 1, "open": 0, "failed": 1}
    assert [w.last_error for w in store.list_windows(integration.id)] == [
        None,
        "CircleCI refused it",
    ]


def test_reopened_window_keeps_its_rows_until_reloaded(
    store: Store, integration: Integration
) -> None:
    store.replace_window_rows(integration.id, OCTOBER, "job-1", SAMPLE_PARTS)

    store.reopen_window(integration.id, OCTOBER)

    (task,) = store.open_windows(integration.id)
    assert (task.job_id, task.attempts) == (None, 0)
    assert store.integration_summary(integration.id)["line_items"] == 517


def test_request_slots_are_shared_and_say_when_the_next_one_frees(
    store: Store, integration: Integration
) -> None:
    slots = [
        store.take_request_slot(ORG_ID, "POST", NOW + timedelta(minutes=i), 3) for i in range(4)
    ]
    other_process = Store(store.location)

    assert slots[:3] == [None, None, None]
    assert slots[3] == NOW + timedelta(hours=1)
    assert other_process.count_requests(ORG_ID, "POST", NOW - timedelta(minutes=1)) == 3
    assert other_process.count_requests(ORG_ID, "GET", NOW - timedelta(minutes=1)) == 0
    assert other_process.take_request_slot(ORG_ID, "GET", NOW, 3) is None
    assert other_process.oldest_request_since(ORG_ID, "POST", NOW - timedelta(hours=1)) == NOW
    assert store.take_request_slot(ORG_ID, "POST", NOW + timedelta(hours=1, seconds=1), 3) is None


def test_a_429_blocks_requests_until_the_given_time(store: Store) -> None:
    store.block_requests(ORG_ID, NOW + timedelta(seconds=90))

    assert store.take_request_slot(ORG_ID, "GET", NOW, 10) == NOW + timedelta(seconds=90)
    assert store.take_request_slot(ORG_ID, "GET", NOW + timedelta(seconds=91), 10) is None


def test_one_integration_per_organization(store: Store, integration: Integration) -> None:
    with pytest.raises(
        StoreConflictError, match=f"organization {ORG_ID} already has an integration"
    ):
        store.insert_integration(ORG_ID, "sha256:other")


def test_integration_is_found_by_id_org_and_fingerprint(
    store: Store, integration: Integration
) -> None:
    fingerprint = token_fingerprint("CCIPAT_test_token")

    assert store.get_integration(integration.id) == integration
    assert store.get_integration_by_org(ORG_ID) == integration
    assert store.find_integration_by_fingerprint(fingerprint) == integration
    assert store.find_integration_by_fingerprint("sha256:none") is None
    assert store.list_integrations() == [integration]


def test_integration_update_changes_fields_and_audits_before_and_after(
    store: Store, integration: Integration
) -> None:
    updated = store.update_integration(
        integration.id, actor="alice", description="prod", token_expires_on=date(2027, 1, 31)
    )

    assert (updated.description, updated.token_expires_on) == ("prod", date(2027, 1, 31))
    (entry,) = store.list_audit(object_type="integration", object_id=integration.id)
    assert (entry.actor, entry.action) == ("alice", "update")
    assert entry.changes == {"description": ["", "prod"], "token_expires_on": [None, "2027-01-31"]}
    with pytest.raises(ValueError, match="cannot update"):
        store.update_integration(integration.id, organization_id="x")


def test_status_changes_are_recorded(store: Store, integration: Integration) -> None:
    store.set_import_status(integration.id, "Warning", "1 window could not be imported")

    current = store.get_integration(integration.id)
    assert current is not None
    assert (current.status, current.status_detail) == ("Warning", "1 window could not be imported")


def test_workspaces_have_unique_names_and_bindings(store: Store, integration: Integration) -> None:
    workspace = store.create_workspace("platform", "the platform team", actor="alice")
    store.bind(workspace.id, integration.id, actor="alice")
    store.bind(workspace.id, integration.id)

    with pytest.raises(StoreConflictError, match="named 'platform'"):
        store.create_workspace("platform")
    assert store.workspace_integration_ids(workspace.id) == [integration.id]
    assert store.unbind(workspace.id, integration.id, actor="alice")
    assert not store.unbind(workspace.id, integration.id)
    store.delete_workspace(workspace.id, actor="alice")
    assert store.get_workspace_by_name("platform") is None
    actions = [entry.action for entry in store.list_audit()]
    assert actions == ["delete", "unbind", "bind", "create"]


def test_only_an_embedded_store_adopts_its_first_actor(store: Store) -> None:
    if store.shared is None:
        assert store.ensure_first_owner("alice")
        return
    assert not store.ensure_first_owner("alice")
    assert store.list_principals() == []
    assert store.initialize("ana") is False  # it exists already: nothing changes
    assert store.list_principals() == []


def test_init_names_the_first_owner_once(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    store = Store(store_location(request, "shared", tmp_path))
    assert not store.exists()
    with pytest.raises(
        StoreNotFoundError, match="there is no circlecost store in ducklake:postgres:"
    ):
        store.migrate()

    assert store.initialize("ana")

    assert store.exists()
    assert [(p.actor, p.role) for p in store.list_principals()] == [("ana", "Organization Owner")]
    assert [entry.action for entry in store.list_audit()] == ["bootstrap"]
    assert not store.initialize("mallory")
    assert store.get_role("mallory") is None


def test_the_first_actor_of_a_new_store_becomes_organization_owner(tmp_path: Path) -> None:
    store = Store(tmp_path / "costs.duckdb")
    store.migrate()
    assert store.ensure_first_owner("alice")
    assert not store.ensure_first_owner("bob")

    store.grant_role("bob", "Viewer", granted_by="alice")
    store.grant_role("bob", "Editor", granted_by="alice")

    assert store.get_role("alice") == "Organization Owner"
    assert store.get_role("bob") == "Editor"
    assert [p.actor for p in store.list_principals()] == ["alice", "bob"]
    with pytest.raises(ValueError, match="role must be one of"):
        store.grant_role("carol", "Admin")
    assert store.revoke_role("bob", revoked_by="alice")
    assert store.get_role("bob") is None


def test_audit_log_redacts_secret_values(store: Store) -> None:
    store.record_audit("alice", "update", "integration", "x", {"token": "CCIPAT_x", "n": 1})

    (entry,) = store.list_audit()
    assert entry.changes == {"token": "[redacted]", "n": 1}
