"""A token of the wrong organization: org A's admin token used for an integration of org B.

On CircleCI a personal token has its user's rights, so the admin of A who is no member of B gets
403/404 on B's usage export. The create fails with a message a person can act on, leaves nothing
in the store, and the same token still works for A.
"""

from __future__ import annotations

import pytest

from circlecost import service
from circlecost.importer import ImportStoppedError, NotAnAdminError
from circlecost.models import IntegrationInputs
from circlecost.settings import Settings
from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.engines import stored_bytes
from tests.support import org_and_token

# The tables `Store.purge_integration` empties for an integration, plus the integrations.
INTEGRATION_TABLES = (
    "integrations",
    "usage",
    "export_jobs",
    "import_windows",
    "prices",
    "bindings",
)


def inputs(org_id: str, token: str) -> IntegrationInputs:
    return IntegrationInputs.model_validate(
        {"token": token, "organization_id": org_id, "backfill_months": 1}
    )


def row_counts(store: Store) -> dict[str, int]:
    counts = {}
    with store.reader() as con:
        for table in INTEGRATION_TABLES:
            row = con.execute(f"SELECT count(*) FROM {table}").fetchone()
            assert row is not None
            counts[table] = int(row[0])
    return counts


def test_org_a_token_for_org_b_fails_naming_b_and_leaves_nothing(
    emulator: Emulator, settings: Settings
) -> None:
    _org_a, token_a = org_and_token(emulator, 0)
    org_b, _ = org_and_token(emulator, 1)

    with pytest.raises(ImportStoppedError) as failure:
        service.create_integration(settings, inputs(org_b, token_a))

    assert isinstance(failure.value, NotAnAdminError)
    message = failure.value.message
    assert "the token's user is not an admin of CircleCI organization" in message
    assert org_b in message
    assert failure.value.hint  # says what to do next
    assert token_a not in message
    assert token_a not in failure.value.hint
    store = settings.store()
    assert store.list_integrations() == []
    assert store.get_integration_by_org(org_b) is None
    assert row_counts(store) == dict.fromkeys(INTEGRATION_TABLES, 0)
    assert token_a.encode() not in stored_bytes(settings.store_location)


def test_circleci_refused_the_export_of_b_and_made_no_job(
    emulator: Emulator, settings: Settings
) -> None:
    _org_a, token_a = org_and_token(emulator, 0)
    org_b, _ = org_and_token(emulator, 1)
    with pytest.raises(ImportStoppedError):
        service.create_integration(settings, inputs(org_b, token_a))
    posts = emulator.requests.records(org_id=org_b, kind="usage_export_create")
    assert posts, "the wrong-org check happens at the usage export"
    assert all(record.status in (403, 404) for record in posts)
    assert emulator.requests.count(org_id=org_b, kind="usage_export_get") == 0


def test_the_same_token_still_works_for_its_own_org(emulator: Emulator, settings: Settings) -> None:
    org_a, token_a = org_and_token(emulator, 0)
    org_b, _ = org_and_token(emulator, 1)
    with pytest.raises(ImportStoppedError):
        service.create_integration(settings, inputs(org_b, token_a))

    integration_id, outputs = service.create_integration(settings, inputs(org_a, token_a))

    assert outputs["status"] == "Stable"
    assert outputs["organization_name"] == emulator.organizations[0]["name"]
    assert outputs["token_user"] == f"{emulator.organizations[0]['name']}-cost-bot"
    store = settings.store()
    assert [i.id for i in store.list_integrations()] == [integration_id]
    assert store.get_integration_by_org(org_a) is not None
    assert store.get_integration_by_org(org_b) is None
    assert row_counts(store)["usage"] > 0


def test_org_b_then_gets_its_integration_with_its_own_token(
    emulator: Emulator, settings: Settings
) -> None:
    _org_a, token_a = org_and_token(emulator, 0)
    org_b, token_b = org_and_token(emulator, 1)
    with pytest.raises(ImportStoppedError):
        service.create_integration(settings, inputs(org_b, token_a))

    _integration_id, outputs = service.create_integration(settings, inputs(org_b, token_b))

    assert outputs["status"] == "Stable"
    assert outputs["organization_name"] == emulator.organizations[1]["name"]
