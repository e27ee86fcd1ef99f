"""Bad inputs to the reference stack: each fails `pulumi up` with a message that names the
field or the rule, and nothing in the store changes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pulumi import automation as auto

from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.clock import SUITE_NOW
from tests.e2e.stack_support import reference_stack

pytestmark = pytest.mark.emulator(seed=31)


@pytest.fixture
def emulator(module_emulator: Emulator) -> Emulator:
    """One emulator for the module's tests: each builds stacks of its own on it."""
    return module_emulator


# Every `up` runs the policy pack, as CI does: the tokens expire within its 90 days.
EXPIRES = (SUITE_NOW.date() + timedelta(days=60)).isoformat()


def acme(emulator: Emulator, **changes: object) -> dict[str, object]:
    org = emulator.organizations[0]
    return {
        "name": "acme",
        "organization_id": org["id"],
        "backfill_months": 0,
        "token_expires_on": EXPIRES,
        **changes,
    }


def snapshot(store: Path) -> tuple[int, int, int]:
    if not store.exists():
        return (0, 0, 0)
    with Store(store).reader() as con:
        row = con.execute(
            "SELECT (SELECT count(*) FROM usage), (SELECT count(*) FROM integrations), "
            "(SELECT count(*) FROM import_windows)"
        ).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


CASES = [
    ("non-UUID organization", {"organization_id": "acme"}, "organization_id", "is not a UUID"),
    ("negative price", {"price_per_credit": "-1"}, "price_per_credit", "greater than 0"),
    ("unknown input", {"colour": "blue"}, "colour", "unknown key"),
    (
        "backfill out of range",
        {"backfill_months": 13},
        "backfill_months",
        "less than or equal to 12",
    ),
    ("bad expiry date", {"token_expires_on": "31/01/2027"}, "token_expires_on", "YYYY-MM-DD"),
]


@pytest.mark.parametrize(("case", "changes", "field", "words"), CASES, ids=[c[0] for c in CASES])
def test_invalid_inputs_fail_naming_the_field_and_change_nothing(
    emulator: Emulator,
    tmp_path: Path,
    case: str,
    changes: dict[str, object],
    field: str,
    words: str,
) -> None:
    token = emulator.org_admin_tokens[emulator.organizations[0]["id"]]
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[acme(emulator, **changes)],
        tokens={"acme": token},
    )
    with pytest.raises(auto.CommandError) as failure:
        stack.up()
    text = str(failure.value)
    assert field in text
    assert words in text
    assert token not in text
    assert snapshot(stack.store) == (0, 0, 0)


def test_a_401_token_and_a_non_admin_token_fail_on_the_token_and_change_nothing(
    emulator: Emulator, tmp_path: Path
) -> None:
    for index, (kind, words) in enumerate(
        [("expired", "token: CircleCI rejected the token (401)"), ("non_admin", "not an admin")]
    ):
        stack = reference_stack(
            tmp_path / str(index),
            emulator.base_url,
            integrations=[acme(emulator)],
            tokens={"acme": emulator.tokens[kind]},
        )
        with pytest.raises(auto.CommandError) as failure:
            stack.up()
        assert words in str(failure.value)
        assert emulator.tokens[kind] not in str(failure.value)
        assert snapshot(stack.store)[:2] == (0, 0)


def test_a_second_integration_for_an_org_a_reused_token_and_an_actor_without_role_are_refused(
    emulator: Emulator, tmp_path: Path
) -> None:
    store = tmp_path / "shared" / "costs.duckdb"
    first_org = emulator.organizations[0]
    token = emulator.org_admin_tokens[first_org["id"]]
    owner = reference_stack(
        tmp_path / "owner",
        emulator.base_url,
        integrations=[acme(emulator)],
        tokens={"acme": token},
        store=store,
    )
    owner.up()
    before = snapshot(store)

    same_org = reference_stack(
        tmp_path / "same-org",
        emulator.base_url,
        integrations=[acme(emulator)],
        tokens={"acme": emulator.tokens["admin"]},
        store=store,
    )
    with pytest.raises(auto.CommandError) as failure:
        same_org.up()
    assert "organization_id:" in str(failure.value)
    assert "already has integration" in str(failure.value)

    second_org = emulator.organizations[1]
    reused = reference_stack(
        tmp_path / "reused",
        emulator.base_url,
        integrations=[
            {
                "name": "globex",
                "organization_id": second_org["id"],
                "backfill_months": 0,
                "token_expires_on": EXPIRES,
            }
        ],
        tokens={"globex": token},
        store=store,
    )
    with pytest.raises(auto.CommandError) as failure:
        reused.up()
    assert "is already used by integration" in str(failure.value)

    Store(store).grant_role("eve", "Viewer", granted_by="ana")
    viewer = reference_stack(
        tmp_path / "viewer",
        emulator.base_url,
        actor="eve",
        integrations=[
            {
                "name": "globex",
                "organization_id": second_org["id"],
                "backfill_months": 0,
                "token_expires_on": EXPIRES,
            }
        ],
        tokens={"globex": emulator.org_admin_tokens[second_org["id"]]},
        store=store,
    )
    with pytest.raises(auto.CommandError) as failure:
        viewer.up()
    assert "'eve' holds Viewer" in str(failure.value)
    assert snapshot(store) == before
