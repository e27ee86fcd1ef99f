"""Integration use cases against the emulator on loopback and a real DuckDB file."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from circlecost import service
from circlecost.errors import CirclecostError
from circlecost.models import IntegrationInputs, WorkspaceInputs
from circlecost.settings import Settings
from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.emulator.helpers import credit
from tests.engines import stored_bytes
from tests.support import CREDIT_COLUMNS, org_and_token


def inputs(org_id: str, token: str, **extra: object) -> IntegrationInputs:
    return IntegrationInputs.model_validate(
        {"token": token, "organization_id": org_id, "backfill_months": 1, **extra}
    )


def served(
    emulator: Emulator, store: Store, integration_id: str, org_id: str
) -> tuple[int, Decimal]:
    """What the emulator serves for exactly the windows the store planned."""
    rows, credits = 0, Decimal(0)
    for planned in store.list_windows(integration_id):
        for row in emulator.expected_rows(org_id, planned.window.start, planned.window.end):
            rows += 1
            credits += sum((credit(row, c) for c in CREDIT_COLUMNS), Decimal(0))
    return rows, credits


def stored(store: Store, integration_id: str) -> tuple[int, Decimal]:
    with store.reader() as con:
        row = con.execute(
            "SELECT count(*), sum(" + " + ".join(f"coalesce({c}, 0)" for c in CREDIT_COLUMNS) + ") "
            "FROM usage WHERE integration_id = ?",
            [integration_id],
        ).fetchone()
    assert row is not None
    count, credits = row
    return int(count), Decimal(credits or 0)


def test_create_imports_exactly_what_circleci_serves_and_becomes_stable(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    integration_id, outputs = service.create_integration(settings, inputs(org_id, token))
    assert outputs["status"] == "Stable"
    assert outputs["organization_name"] == "acme"
    assert outputs["token_user"] == "acme-cost-bot"
    store = settings.store()
    assert stored(store, integration_id) == served(emulator, store, integration_id, org_id)
    assert stored(store, integration_id)[0] > 100
    assert token.encode() not in stored_bytes(settings.store_location)
    assert store.get_role("ana") == "Organization Owner"  # first actor of a new store


def test_create_with_a_401_token_fails_on_the_token_and_leaves_nothing(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, _ = org_and_token(emulator)
    with pytest.raises(CirclecostError) as failure:
        service.create_integration(settings, inputs(org_id, emulator.tokens["expired"]))
    assert failure.value.message.startswith("token:")
    assert "401" in failure.value.message
    assert settings.store().list_integrations() == []


def test_create_with_a_non_admin_token_fails_and_leaves_nothing(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, _ = org_and_token(emulator)
    with pytest.raises(CirclecostError) as failure:
        service.create_integration(settings, inputs(org_id, emulator.tokens["non_admin"]))
    assert "not an admin" in failure.value.message
    store = settings.store()
    assert store.list_integrations() == []
    with store.reader() as con:
        assert con.execute("SELECT count(*) FROM usage").fetchone() == (0,)


def test_a_second_integration_for_the_same_org_and_a_shared_token_are_refused(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    service.create_integration(settings, inputs(org_id, token))
    with pytest.raises(CirclecostError, match=r"organization_id: .* already has integration"):
        service.create_integration(settings, inputs(org_id, emulator.tokens["admin"]))
    other_org, _ = org_and_token(emulator, 1)
    with pytest.raises(CirclecostError, match=r"token: this token .* is already used"):
        service.create_integration(settings, inputs(other_org, token))
    assert len(settings.store().list_integrations()) == 1


def test_an_actor_without_an_owner_role_cannot_create(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    service.grant(settings, "eve", "Viewer")
    with pytest.raises(CirclecostError, match="'eve' holds Viewer"):
        service.create_integration(replace(settings, actor="eve"), inputs(org_id, token))
    assert settings.store().list_integrations() == []


def test_a_price_change_reprices_by_exactly_the_ratio(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    old = inputs(org_id, token)
    integration_id, before = service.create_integration(settings, old)
    new = inputs(org_id, token, price_per_credit="0.0003")
    after = service.update_integration(settings, integration_id, old, new)
    summary = settings.store().integration_summary(integration_id)
    assert summary["total_cost_usd"] == summary["total_credits"] * Decimal("0.0003")
    assert after["total_credits"] == before["total_credits"]


def test_rotating_the_token_revalidates_and_moves_token_rotated_at(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    old = inputs(org_id, token)
    integration_id, before = service.create_integration(settings, old)
    later = replace(settings, clock=lambda: emulator.clock.now() + timedelta(hours=1))
    after = service.update_integration(
        later, integration_id, old, inputs(org_id, emulator.tokens["admin"])
    )
    rotated_after, rotated_before = after["token_rotated_at"], before["token_rotated_at"]
    assert rotated_after is not None
    assert rotated_before is not None
    assert rotated_after > rotated_before
    assert after["token_fingerprint"] != before["token_fingerprint"]


def test_an_invalid_new_token_fails_the_update_and_keeps_the_old_data(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    old = inputs(org_id, token)
    integration_id, before = service.create_integration(settings, old)
    rows_before = stored(settings.store(), integration_id)
    with pytest.raises(CirclecostError, match="token: CircleCI rejected the token"):
        service.update_integration(
            settings, integration_id, old, inputs(org_id, emulator.tokens["expired"])
        )
    record = settings.store().get_integration(integration_id)
    assert record is not None
    assert record.token_fingerprint == before["token_fingerprint"]
    assert stored(settings.store(), integration_id) == rows_before


def test_delete_purges_every_row_of_the_integration_and_keeps_the_others(
    emulator: Emulator, settings: Settings
) -> None:
    acme, acme_token = org_and_token(emulator, 0)
    globex, globex_token = org_and_token(emulator, 1)
    acme_id, _ = service.create_integration(settings, inputs(acme, acme_token))
    globex_id, _ = service.create_integration(settings, inputs(globex, globex_token))
    globex_rows = stored(settings.store(), globex_id)
    service.delete_integration(settings, acme_id)
    store = settings.store()
    assert stored(store, acme_id) == (0, Decimal(0))
    assert stored(store, globex_id) == globex_rows
    assert store.get_integration(acme_id) is None
    assert any(entry.action == "delete" for entry in store.list_audit())


def test_refresh_after_a_day_imports_the_new_day(emulator: Emulator, settings: Settings) -> None:
    org_id, token = org_and_token(emulator)
    integration_id, _ = service.create_integration(settings, inputs(org_id, token))
    rows_before = stored(settings.store(), integration_id)[0]
    emulator.clock.advance(86_400)
    tomorrow = replace(settings, clock=emulator.clock.now)  # circlecost a day on, as CircleCI
    outputs = service.read_integration(tomorrow, integration_id, token)
    assert outputs is not None
    assert outputs["status"] == "Stable"
    store = settings.store()
    assert stored(store, integration_id) == served(emulator, store, integration_id, org_id)
    assert stored(store, integration_id)[0] > rows_before


def test_refresh_with_an_expired_token_turns_the_status_to_error(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    integration_id, _ = service.create_integration(settings, inputs(org_id, token))
    rows = stored(settings.store(), integration_id)
    tomorrow = replace(settings, clock=lambda: emulator.clock.now() + timedelta(days=1))
    outputs = service.read_integration(tomorrow, integration_id, emulator.tokens["expired"])
    assert outputs is not None
    assert outputs["status"] == "Error"
    assert "401" in outputs["status_detail"]
    assert stored(settings.store(), integration_id) == rows


def test_binding_waits_for_stable_and_a_workspace_shows_only_bound_costs(
    emulator: Emulator, settings: Settings
) -> None:
    acme, acme_token = org_and_token(emulator, 0)
    workspace_id = service.create_workspace(settings, WorkspaceInputs(name="platform"))
    importing = replace(settings, create_timeout=timedelta(0))
    emulator.faults.set(null_urls_polls=2)  # CircleCI is still preparing both windows
    acme_id, outputs = service.create_integration(importing, inputs(acme, acme_token))
    assert outputs["status"] == "Importing"
    with pytest.raises(CirclecostError, match="is Importing, not Stable"):
        service.create_binding(settings, workspace_id, acme_id)
    service.read_integration(settings, acme_id, acme_token)  # pulumi refresh continues it
    service.create_binding(settings, workspace_id, acme_id)
    assert service.workspace_integration_ids(settings, "platform") == [acme_id]


def test_adopt_takes_over_the_existing_integration_and_keeps_its_data(
    emulator: Emulator, settings: Settings
) -> None:
    org_id, token = org_and_token(emulator)
    integration_id, _ = service.create_integration(settings, inputs(org_id, token))
    rows = stored(settings.store(), integration_id)
    adopted_id, outputs = service.create_integration(
        settings, inputs(org_id, emulator.tokens["admin"], adopt=True)
    )
    assert adopted_id == integration_id
    assert outputs["token_user"] == "ada-admin"
    assert stored(settings.store(), integration_id) == rows
    assert settings.store().list_audit(object_id=integration_id)[0].action == "adopt"


def test_adopt_still_checks_the_token(emulator: Emulator, settings: Settings) -> None:
    org_id, token = org_and_token(emulator)
    integration_id, _ = service.create_integration(settings, inputs(org_id, token))
    with pytest.raises(CirclecostError, match="token: CircleCI rejected the token"):
        service.create_integration(settings, inputs(org_id, emulator.tokens["expired"], adopt=True))
    record = settings.store().get_integration(integration_id)
    assert record is not None
    assert record.token_user == "acme-cost-bot"
