"""The owner-role policy's look-up (`circlecost.access.roles_for_policy`) on both engines.

An embedded store adopts its first actor, so before anyone acted there are no roles to check
(None). A shared store never does: an unknown actor holds no role, and a store that was never
created is an error that says how to create it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from circlecost.access import roles_for_policy
from circlecost.engine import LAKE_PREFIX, SharedStore
from circlecost.store import Store, StoreNotFoundError
from tests.engines import ENGINES, store_location


def setting(location: Path | SharedStore) -> str:
    """The store as the policy pack gets it: the stack's `circlecost:store` value."""
    if isinstance(location, SharedStore):
        return LAKE_PREFIX + location.catalog
    return str(location)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_owner_holds_the_role_and_a_stranger_none(
    request: pytest.FixtureRequest, tmp_path: Path, engine: str
) -> None:
    location = store_location(request, engine, tmp_path)
    store = Store(location)
    if store.shared is not None:
        store.initialize("ana")
    else:
        store.migrate()
        store.ensure_first_owner("ana")
    store.grant_role("ci-bot", "Integration Owner", granted_by="ana")

    assert roles_for_policy(setting(location), "ana") == ["Organization Owner"]
    assert roles_for_policy(setting(location), "ci-bot") == ["Integration Owner"]
    assert roles_for_policy(setting(location), "mallory") == []


def test_an_embedded_store_nobody_acted_on_yet_has_no_roles_to_check(tmp_path: Path) -> None:
    assert roles_for_policy(str(tmp_path / "new" / "costs.duckdb"), "anyone") is None


def test_a_shared_store_never_created_fails_and_says_how_to_create_it(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    location = store_location(request, "shared", tmp_path)

    with pytest.raises(StoreNotFoundError) as missing:
        roles_for_policy(setting(location), "anyone")

    assert "store init --owner" in missing.value.hint
    assert not Store(location).exists()  # the look-up created nothing
