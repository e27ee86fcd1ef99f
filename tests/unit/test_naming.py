"""One naming scheme: camelCase inputs on the wire, snake_case in Python, and the snake_case
names of earlier versions still read everywhere (models, state diffs, the policy rules)."""

from __future__ import annotations

import contextvars
from datetime import date
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pydantic import ValidationError

from circlecost.engine import SharedStore
from circlecost.models import (
    BindingInputs,
    IntegrationInputs,
    camel_case_inputs,
    camel_case_names,
    field_errors,
)
from circlecost.policies import rules
from circlecost.resources import (
    SETTING_KEYS,
    Integration,
    IntegrationProvider,
    WorkspaceBinding,
    WorkspaceBindingProvider,
    settings_from_config,
    user_inputs,
)
from circlecost.settings import Settings

ORG = "bcf0fc20-925e-4560-aeb7-de49d4dcd866"
OTHER_ORG = "34f108a1-f31c-4064-bd66-eb7ecc1663a2"
TOKEN = "CCIPAT_naming_test_5f1c0d9e8b7a"

# What the previous version wrote into the state: snake_case inputs beside the outputs.
SNAKE_STATE: dict[str, Any] = {
    "__provider": "<pickled provider>",
    "token": TOKEN,
    "organization_id": ORG,
    "description": "ACME",
    "price_per_credit": "0.0005",
    "price_schedule": [{"effective_from": "2027-01-01", "price_per_credit": "0.0004"}],
    "token_expires_on": "2027-01-31",
    "backfill_months": 1,
    "actor": "ana",
    "store": "/stores/costs.duckdb",
    "organization_name": "acme",
    "status": "Stable",
    "total_cost_usd": 12.5,
}
SNAKE_INPUTS = (
    "organization_id",
    "description",
    "price_per_credit",
    "price_schedule",
    "token_expires_on",
    "backfill_months",
)
# The same declaration as this version's program sends it.
CAMEL_NEWS: dict[str, Any] = {
    "__provider": "<pickled provider>",
    "token": TOKEN,
    "organizationId": ORG,
    "description": "ACME",
    "pricePerCredit": "0.0005",
    "priceSchedule": [{"effectiveFrom": "2027-01-01", "pricePerCredit": "0.0004"}],
    "tokenExpiresOn": "2027-01-31",
    "backfillMonths": 1,
    "actor": "ana",
    "store": "/stores/costs.duckdb",
    "stack": "organization/circlecost/test",
}


def integration_provider(tmp_path: Path) -> IntegrationProvider:
    provider = IntegrationProvider()
    provider._settings = Settings(store_location=tmp_path / "no-store.duckdb")
    return provider


class RecordingMocks(pulumi.runtime.Mocks):
    """Pulumi's engine stand-in: records each resource's inputs as they go on the wire."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.inputs[args.name] = dict(args.inputs)
        return f"{args.name}-id", args.inputs

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        return {}, None


def declared_inputs() -> dict[str, dict[str, Any]]:
    """Declares an Integration and a binding with snake_case keyword arguments."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, preview=False)

    @pulumi.runtime.test
    def program() -> pulumi.Output[Any]:
        integration = Integration(
            "acme",
            token=TOKEN,
            organization_id=ORG,
            price_per_credit=0.0005,
            price_schedule=pulumi.Output.from_input(
                [{"effective_from": "2027-01-01", "price_per_credit": "0.0004"}]
            ),
            token_expires_on="2027-01-31",
            backfill_months=1,
        )
        binding = WorkspaceBinding("binding", workspace_id="ws-1", integration_id=integration.id)
        return pulumi.Output.all(integration.id, binding.id)

    program()
    return mocks.inputs


def test_snake_case_keyword_arguments_become_camel_case_inputs() -> None:
    # A fresh context: the mocks' runtime settings are context variables and stay in it.
    inputs = contextvars.Context().run(declared_inputs)
    assert set(user_inputs(inputs["acme"])) == {
        "token",
        "organizationId",
        "description",
        "pricePerCredit",
        "priceSchedule",
        "tokenExpiresOn",
        "backfillMonths",
    }
    assert not [key for key in inputs["acme"] if "_" in key.strip("_")]
    assert inputs["acme"]["priceSchedule"] == [
        {"effectiveFrom": "2027-01-01", "pricePerCredit": "0.0004"}
    ]
    assert inputs["binding"]["workspaceId"] == "ws-1"
    assert inputs["binding"]["integrationId"] == "acme-id"


def test_a_snake_case_state_and_the_same_camel_case_inputs_diff_as_no_change(
    tmp_path: Path,
) -> None:
    result = integration_provider(tmp_path).diff("integration-1", SNAKE_STATE, CAMEL_NEWS)
    assert result.changes is False
    assert result.replaces == []


@pytest.mark.parametrize(
    ("change", "replaces"),
    [
        ({"pricePerCredit": "0.0003"}, []),
        ({"priceSchedule": [{"effectiveFrom": "2027-02-01", "pricePerCredit": "0.0004"}]}, []),
        ({"backfillMonths": 2}, []),
        ({"organizationId": OTHER_ORG}, ["organizationId"]),
    ],
    ids=["price", "schedule", "backfill", "organization"],
)
def test_a_real_change_against_a_snake_case_state_is_still_seen(
    tmp_path: Path, change: dict[str, Any], replaces: list[str]
) -> None:
    result = integration_provider(tmp_path).diff(
        "integration-1", SNAKE_STATE, {**CAMEL_NEWS, **change}
    )
    assert result.changes is True
    assert result.replaces == replaces


def test_a_binding_written_with_snake_case_ids_diffs_as_no_change() -> None:
    olds = {"workspace_id": "ws-1", "integration_id": "int-1", "actor": "ana"}
    news = {"workspaceId": "ws-1", "integrationId": "int-1", "actor": "ana"}
    assert WorkspaceBindingProvider().diff("b-1", olds, news).changes is False
    moved = WorkspaceBindingProvider().diff("b-1", olds, {**news, "workspaceId": "ws-2"})
    assert moved.changes is True
    assert moved.replaces == ["workspaceId"]


def test_user_inputs_are_camel_case_without_context_outputs_or_provider() -> None:
    assert user_inputs(SNAKE_STATE) == user_inputs(CAMEL_NEWS)
    assert set(user_inputs(SNAKE_STATE)) == {
        "token",
        "organizationId",
        "description",
        "pricePerCredit",
        "priceSchedule",
        "tokenExpiresOn",
        "backfillMonths",
    }


def test_the_provider_parses_a_snake_case_state_like_a_camel_case_one(tmp_path: Path) -> None:
    provider = integration_provider(tmp_path)
    assert provider.parse(SNAKE_STATE) == provider.parse(CAMEL_NEWS)
    parsed = provider.parse(CAMEL_NEWS)
    assert parsed.organization_id == ORG
    assert str(parsed.price_schedule[0].price_per_credit) == "0.0004"


def test_models_take_both_spellings_and_python_names() -> None:
    declared = ("token", *SNAKE_INPUTS)
    snake = IntegrationInputs.model_validate({key: SNAKE_STATE[key] for key in declared})
    assert snake == IntegrationInputs.model_validate(user_inputs(CAMEL_NEWS))
    assert BindingInputs(workspace_id="w", integration_id="i") == BindingInputs.model_validate(
        {"workspaceId": "w", "integrationId": "i"}
    )


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"organization_id": "acme"}, "organization_id"),
        ({"organizationId": "acme"}, "organizationId"),
        ({"backfill_months": 13}, "backfill_months"),
        ({"backfillMonths": 13}, "backfillMonths"),
        (
            {"price_schedule": [{"effective_from": "31/01/2027", "price_per_credit": "1"}]},
            "price_schedule[0].effective_from",
        ),
        (
            {"priceSchedule": [{"effectiveFrom": "31/01/2027", "pricePerCredit": "1"}]},
            "priceSchedule[0].effectiveFrom",
        ),
    ],
)
def test_an_error_names_the_key_as_the_user_wrote_it(values: dict[str, Any], field: str) -> None:
    given = {"token": TOKEN, "organizationId": ORG, **values}
    if "organization_id" in values:
        del given["organizationId"]
    with pytest.raises(ValidationError) as error:
        IntegrationInputs.model_validate(given)
    assert [name for name, _reason in field_errors(error.value, IntegrationInputs)] == [field]


def test_an_unknown_input_gets_the_closest_camel_case_name() -> None:
    with pytest.raises(ValidationError) as error:
        IntegrationInputs.model_validate({"token": TOKEN, "organizationId": ORG, "tokenExpires": 1})
    ((field, reason),) = field_errors(error.value, IntegrationInputs)
    assert field == "tokenExpires"
    assert "did you mean tokenExpiresOn?" in reason
    assert "camelCase" in reason


def test_both_spellings_of_one_input_are_refused_naming_the_one_to_keep() -> None:
    with pytest.raises(ValidationError) as error:
        IntegrationInputs.model_validate(
            {"token": TOKEN, "organizationId": ORG, "organization_id": OTHER_ORG}
        )
    ((field, reason),) = field_errors(error.value, IntegrationInputs)
    assert field == "organization_id"
    assert "keep only organizationId" in reason


def test_camel_case_names_reports_each_rename_and_keeps_a_present_new_spelling() -> None:
    renamed: list[tuple[str, str]] = []
    result = camel_case_names(
        {
            "organization_id": ORG,
            "price_schedule": [{"effective_from": "2027-01-01", "pricePerCredit": "1"}],
            "colour": "blue",
        },
        renamed=renamed,
    )
    assert result == {
        "organizationId": ORG,
        "priceSchedule": [{"effectiveFrom": "2027-01-01", "pricePerCredit": "1"}],
        "colour": "blue",
    }
    assert renamed == [
        ("organization_id", "organizationId"),
        ("price_schedule", "priceSchedule"),
        ("price_schedule[0].effective_from", "effectiveFrom"),
    ]
    both = camel_case_names({"organization_id": "a", "organizationId": "b"})
    assert both == {"organization_id": "a", "organizationId": "b"}


def test_camel_case_inputs_renames_binding_ids_too() -> None:
    assert camel_case_inputs({"workspace_id": "w", "integration_id": "i", "stack": "s"}) == {
        "workspaceId": "w",
        "integrationId": "i",
        "stack": "s",
    }


def test_settings_come_from_every_camel_case_setting_key(tmp_path: Path) -> None:
    values = {
        "actor": "ana",
        "store": "ducklake:postgres:host=db.internal dbname=costs",
        "storeDataPath": str(tmp_path / "lake"),
        "circleciUrl": "https://circleci.example.com/api/v2",
        "allowLoopbackDownloads": "true",
        "createTimeoutSeconds": "61",
        "bindingTimeoutSeconds": "62",
    }
    assert set(values) == set(SETTING_KEYS)
    settings = settings_from_config({f"circlecost:{key}": value for key, value in values.items()})
    assert (settings.actor, settings.store_location, settings.circleci_url) == (
        "ana",
        SharedStore("host=db.internal dbname=costs", f"{tmp_path / 'lake'}/"),
        "https://circleci.example.com/api/v2",
    )
    assert settings.allow_loopback_downloads is True
    assert settings.create_timeout.total_seconds() == 61
    assert settings.binding_timeout.total_seconds() == 62


def test_stack_config_wins_over_the_environment_for_the_actor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CIRCLECOST_ACTOR", "ci-bot")
    assert settings_from_config({"circlecost:actor": "ana"}).actor == "ana"
    assert settings_from_config({}).actor == "ci-bot"


# --- the policy rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        {"effectiveFrom": "2027-01-01", "pricePerCredit": "0.5"},
        {"effective_from": "2027-01-01", "price_per_credit": "0.5"},
    ],
    ids=["camelCase", "snake_case"],
)
def test_price_sanity_reads_dated_prices_in_either_spelling(entry: dict[str, str]) -> None:
    (message,) = rules.price_sanity("acme", "0.0006", [entry])
    assert "priceSchedule[0] (2027-01-01)" in message
    assert "0.5 USD per credit" in message


def test_policy_messages_name_the_camel_case_inputs() -> None:
    (missing,) = rules.token_rotation("acme", None, date(2026, 11, 25), 90)
    assert "has no tokenExpiresOn" in missing
    assert "token_expires_on" not in missing
    (price,) = rules.price_sanity("acme", "0.6", [])
    assert "pricePerCredit is 0.6" in price
