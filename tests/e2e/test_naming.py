"""One naming scheme, through the real CLI: camelCase stack config and inputs, the snake_case
names of earlier versions still read (with a warning) and diffing as no change, and a typo in
stack config answered with one line that suggests the key meant."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto
from pydantic.alias_generators import to_snake

from circlecost_emulator import Emulator
from tests.clock import SUITE_NOW
from tests.e2e.stack_support import POLICY_PACK, ReferenceStack, reference_stack

ACME = "bcf0fc20-925e-4560-aeb7-de49d4dcd866"
TOKEN = "CCIPAT_naming_test_5f1c0d9e8b7a6c5d4e3f2a1b0c9d8e7f6a5b4c3d"
URL = "http://127.0.0.1:9/api/v2"  # previews that fail in the program never call CircleCI
RENAMED_TYPES = (
    "pulumi-python:dynamic/circlecost:Integration",
    "pulumi-python:dynamic/circlecost:WorkspaceBinding",
)


def in_days(days: int) -> str:
    return (SUITE_NOW.date() + timedelta(days=days)).isoformat()


def snake_case_entry(org_id: str) -> dict[str, Any]:
    """An integrations entry as stack config spelt it before the rename."""
    return {
        "name": "acme",
        "organization_id": org_id,
        "token_expires_on": in_days(60),
        "backfill_months": 0,
        "price_per_credit": "0.0005",
        "price_schedule": [{"effective_from": in_days(-30), "price_per_credit": "0.0004"}],
        "token_config": "acme-ci-token",
    }


def camel_case_entry(org_id: str) -> dict[str, Any]:
    return {
        "name": "acme",
        "organizationId": org_id,
        "tokenExpiresOn": in_days(60),
        "backfillMonths": 0,
        "pricePerCredit": "0.0005",
        "priceSchedule": [{"effectiveFrom": in_days(-30), "pricePerCredit": "0.0004"}],
        "tokenConfig": "acme-ci-token",
    }


RENAMED = (
    "organizationId",
    "pricePerCredit",
    "priceSchedule",
    "effectiveFrom",
    "tokenExpiresOn",
    "backfillMonths",
    "workspaceId",
    "integrationId",
)


def snake_case_names(value: Any) -> Any:
    """What the previous version wrote: each renamed property under its snake_case name."""
    if isinstance(value, list):
        return [snake_case_names(item) for item in value]
    if isinstance(value, dict):
        return {
            to_snake(key) if key in RENAMED else key: snake_case_names(item)
            for key, item in value.items()
        }
    return value


def rewrite_state_as_the_previous_version(stack: ReferenceStack) -> int:
    """Renames the inputs and outputs of every Integration and binding in the state to
    snake_case, as the version before the rename wrote them; returns how many it rewrote."""
    deployment = stack.stack.export_stack()
    assert deployment.deployment is not None
    rewritten = 0
    for resource in deployment.deployment["resources"]:
        if resource["type"] in RENAMED_TYPES:
            for part in ("inputs", "outputs"):
                resource[part] = snake_case_names(resource[part])
            rewritten += 1
    stack.stack.import_stack(deployment)
    return rewritten


def state_property_names(stack: ReferenceStack) -> set[str]:
    deployment = stack.stack.export_stack()
    assert deployment.deployment is not None
    return {
        key
        for resource in deployment.deployment["resources"]
        if resource["type"] in RENAMED_TYPES
        for key in resource["inputs"]
    }


@pytest.mark.emulator(seed=41)
def test_snake_case_config_warns_then_camel_case_config_and_old_state_preview_as_no_change(
    emulator: Emulator, tmp_path: Path
) -> None:
    org_id = emulator.organizations[0]["id"]
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[snake_case_entry(org_id)],
        workspaces=[{"name": "platform", "integrations": ["acme"]}],
    )
    stack.set("circlecost:acme-ci-token", emulator.org_admin_tokens[org_id], secret=True)
    stack.up()
    first_run = stack.text()
    for old, new in [
        ("organization_id", "organizationId"),
        ("token_expires_on", "tokenExpiresOn"),
        ("price_schedule[0].effective_from", "effectiveFrom"),
        ("token_config", "tokenConfig"),
    ]:
        assert f"circlecost:integrations[0].{old} is deprecated: rename it to {new}" in first_run
    # The state holds the new names whatever the config's spelling.
    names = state_property_names(stack)
    assert {"organizationId", "tokenExpiresOn", "workspaceId", "integrationId"} <= names
    assert not {"organization_id", "token_expires_on", "workspace_id"} & names

    stack.set_integrations([camel_case_entry(org_id)])
    stack.log.clear()
    switched = stack.preview(policy_packs=[POLICY_PACK])
    assert set(switched.change_summary) == {"same"}, switched.change_summary
    assert "deprecated" not in stack.text()

    assert rewrite_state_as_the_previous_version(stack) == 2
    assert "organization_id" in state_property_names(stack)
    from_old_state = stack.preview(policy_packs=[POLICY_PACK])
    assert set(from_old_state.change_summary) == {"same"}, from_old_state.change_summary
    assert "Traceback" not in stack.text()


def failing_preview(tmp_path: Path, **kwargs: Any) -> str:
    settings = kwargs.pop("settings", {})
    tokens = kwargs.pop("tokens", {"acme": TOKEN})
    stack = reference_stack(tmp_path, URL, tokens=tokens, **kwargs)
    for key, value in settings.items():
        stack.set(key, value)
    with pytest.raises(auto.CommandError) as failure:
        stack.preview()
    return str(failure.value)


GOOD_ENTRY = {"name": "acme", "organizationId": ACME, "tokenExpiresOn": in_days(60)}
TYPOS = [
    (
        "misspelt setting",
        {"settings": {"circlecost:circleciUrll": "https://circleci.com/api/v2"}},
        "circlecost:circleciUrll: is not a circlecost setting; "
        "did you mean circlecost:circleciUrl?",
    ),
    (
        "snake_case setting",
        {"settings": {"circlecost:create_timeout_seconds": "60"}},
        "did you mean circlecost:createTimeoutSeconds?",
    ),
    (
        "misspelt token key",
        {"settings": {"circlecost:acme-tokn": "x"}, "tokens": {}},
        "circlecost:acme-tokn: is not a circlecost setting; did you mean circlecost:acme-token?",
    ),
    (
        "misspelt entry key",
        {"integrations": [{**GOOD_ENTRY, "backfillMonth": 1}]},
        "circlecost:integrations[0].backfillMonth: unknown key; did you mean backfillMonths?",
    ),
    (
        "both spellings",
        {"integrations": [{**GOOD_ENTRY, "organization_id": ACME}]},
        "circlecost:integrations[0].organization_id: is the old spelling of organizationId, "
        "which is also set: keep only organizationId",
    ),
    (
        "bad value",
        {"integrations": [{**GOOD_ENTRY, "organizationId": "acme"}]},
        "circlecost:integrations[0].organizationId: 'acme' is not a UUID",
    ),
    (
        "bad dated price",
        {
            "integrations": [
                {**GOOD_ENTRY, "priceSchedule": [{"effectiveFrom": "soon", "pricePerCredit": 1}]}
            ]
        },
        "circlecost:integrations[0].priceSchedule[0].effectiveFrom: 'soon' is not a date",
    ),
    (
        "misspelt workspace key",
        {"workspaces": [{"name": "platform", "integration": ["acme"]}]},
        "circlecost:workspaces[0].integration: unknown key; did you mean integrations?",
    ),
    (
        "unknown integration in a workspace",
        {"workspaces": [{"name": "platform", "integrations": ["acmee"]}]},
        "'acmee' is not one of the integrations ['acme']; did you mean acme?",
    ),
]


@pytest.mark.parametrize(("case", "config", "line"), TYPOS, ids=[case[0] for case in TYPOS])
def test_a_typo_in_stack_config_fails_the_preview_with_one_line_and_no_traceback(
    tmp_path: Path, case: str, config: dict[str, Any], line: str
) -> None:
    config.setdefault("integrations", [GOOD_ENTRY])
    text = failing_preview(tmp_path, **config)
    assert line in text
    assert "(in Pulumi.test.yaml)" in text
    assert "Traceback" not in text
    assert "unhandled exception" not in text
    assert TOKEN not in text


def test_a_token_key_left_from_a_removed_integration_only_warns(tmp_path: Path) -> None:
    stack = reference_stack(
        tmp_path, URL, integrations=[GOOD_ENTRY], tokens={"acme": TOKEN, "globex": TOKEN + "b"}
    )
    stack.preview()
    assert "circlecost:globex-token is the token of no integration" in stack.text()
    assert json.dumps(TOKEN) not in stack.text()
