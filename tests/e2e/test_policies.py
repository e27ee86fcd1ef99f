"""The policy pack run by the real CLI on previews of the reference stack."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pulumi import automation as auto

from circlecost.store import Store
from tests.clock import SUITE_NOW
from tests.e2e.stack_support import POLICY_PACK, reference_stack

ACME = "bcf0fc20-925e-4560-aeb7-de49d4dcd866"
GLOBEX = "34f108a1-f31c-4064-bd66-eb7ecc1663a2"
TOKEN_A = "CCIPAT_policy_test_a_5f1c0d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
TOKEN_B = "CCIPAT_policy_test_b_0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b"
URL = "http://127.0.0.1:9/api/v2"  # previews of new resources never call CircleCI


def in_days(days: int) -> str:
    return (SUITE_NOW.date() + timedelta(days=days)).isoformat()


def integration(name: str, org: str, **extra: object) -> dict[str, object]:
    return {"name": name, "organization_id": org, "token_expires_on": in_days(60), **extra}


def preview(
    tmp_path: Path, integrations: list[dict[str, object]], tokens: dict[str, str], **kw: object
) -> str:
    stack = reference_stack(tmp_path, URL, integrations=integrations, tokens=tokens, **kw)  # type: ignore[arg-type]
    stack.preview(policy_packs=[POLICY_PACK])
    return stack.text()


def failing_preview(
    tmp_path: Path, integrations: list[dict[str, object]], tokens: dict[str, str], **kw: object
) -> str:
    with pytest.raises(auto.CommandError) as failure:
        preview(tmp_path, integrations, tokens, **kw)
    return str(failure.value)


def test_a_compliant_stack_passes_the_policy_pack(tmp_path: Path) -> None:
    text = preview(
        tmp_path,
        [integration("acme", ACME), integration("globex", GLOBEX)],
        {"acme": TOKEN_A, "globex": TOKEN_B},
    )
    assert "circlecost@v0.1.0" in text
    assert "mandatory" not in text


def test_a_shared_token_fails_the_dedicated_token_policy(tmp_path: Path) -> None:
    text = failing_preview(
        tmp_path,
        [integration("acme", ACME), integration("globex", GLOBEX)],
        {"acme": TOKEN_A, "globex": TOKEN_A},
    )
    assert "circlecost-dedicated-token" in text
    assert "'acme' and 'globex'" in text
    assert TOKEN_A not in text


@pytest.mark.parametrize(
    ("expires_on", "words"),
    [
        (in_days(-1), "expired on"),
        (in_days(200), "more than 90 days ahead"),
        (None, "has no tokenExpiresOn"),
    ],
    ids=["expired", "too-long-lived", "missing"],
)
def test_token_rotation_policy_fails_expired_and_long_lived_tokens(
    tmp_path: Path, expires_on: str | None, words: str
) -> None:
    entry = integration("acme", ACME, token_expires_on=expires_on)
    if expires_on is None:
        del entry["token_expires_on"]
    text = failing_preview(tmp_path, [entry], {"acme": TOKEN_A})
    assert "circlecost-token-rotation" in text
    assert words in text
    assert TOKEN_A not in text


def test_an_actor_without_an_owner_role_fails_the_owner_role_policy(tmp_path: Path) -> None:
    store = tmp_path / "store" / "costs.duckdb"
    owner = Store(store)
    owner.migrate()
    owner.ensure_first_owner("ana")
    owner.grant_role("eve", "Editor", granted_by="ana")
    text = failing_preview(
        tmp_path, [integration("acme", ACME)], {"acme": TOKEN_A}, actor="eve", store=store
    )
    assert "circlecost-owner-role" in text
    assert "'eve' holds Editor" in text


def test_a_price_of_0_6_warns_but_the_preview_passes(tmp_path: Path) -> None:
    text = preview(tmp_path, [integration("acme", ACME, price_per_credit="0.6")], {"acme": TOKEN_A})
    assert "circlecost-price-sanity" in text
    assert "1,000× the list price" in text


def test_the_gitops_entry_point_runs_the_preview_with_the_policy_pack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    from circlecost import gitops

    stack = reference_stack(
        tmp_path, URL, integrations=[integration("acme", ACME)], tokens={"acme": TOKEN_A}
    )
    for key, value in stack.project.env.items():
        monkeypatch.setenv(key, value)
    assert gitops.main(["preview", "--stack", "test", "--cwd", str(stack.project.work_dir)]) == 0
    stack.set("circlecost:acme-token", TOKEN_B, secret=True)
    stack.set("circlecost:integrations[0].token_expires_on", in_days(-3))
    assert gitops.main(["preview", "--stack", "test", "--cwd", str(stack.project.work_dir)]) != 0
    output = capfd.readouterr()
    assert "circlecost-token-rotation" in output.out + output.err
