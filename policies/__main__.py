"""circlecost's policy pack: dedicated tokens, rotated tokens, owner roles, sane prices, and
budgets over a threshold.

Run by the Pulumi CLI: `pulumi preview --policy-pack policies`. The rules live in rules.py as
pure functions; this file only adapts Pulumi's validation arguments to them.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from circlecost.models import camel_case_inputs
from circlecost.policies import rules
from circlecost.vocabulary import BUDGET_TYPE, INTEGRATION_TYPE


def today() -> date:
    """Today on circlecost's clock: the one the provider reads, so both agree on expiry."""
    from circlecost.settings import read_sources  # only where a rule needs the date

    return read_sources().clock()().date()


def integration_inputs(args: ResourceValidationArgs) -> dict[str, Any] | None:
    """An Integration's inputs, with camelCase names however they were spelt (a program from
    before the rename sent snake_case ones)."""
    if args.resource_type != INTEGRATION_TYPE:
        return None
    return camel_case_inputs(dict(args.props))


def check_dedicated_tokens(args: StackValidationArgs, report: ReportViolation) -> None:
    uses = [
        rules.TokenUse(resource=resource.name, token=str(resource.props.get("token") or ""))
        for resource in args.resources
        if resource.resource_type == INTEGRATION_TYPE
    ]
    for message in rules.shared_tokens(uses):
        report(message, None)


def check_token_rotation(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = integration_inputs(args)
    if props is None:
        return
    max_days = int(args.get_config().get("max_token_lifetime_days", 90))
    for message in rules.token_rotation(args.name, props.get("tokenExpiresOn"), today(), max_days):
        report(message, None)


def check_token_expiry_soon(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = integration_inputs(args)
    if props is None:
        return
    warn_days = int(args.get_config().get("warn_days", 14))
    for message in rules.token_expiry_soon(
        args.name, props.get("tokenExpiresOn"), today(), warn_days
    ):
        report(message, None)


def check_owner_role(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = integration_inputs(args)
    if props is None:
        return
    # The program put its stack config into the inputs; the environment fills what it left out.
    from circlecost.settings import read_sources

    sources = read_sources({"actor": props.get("actor"), "store": props.get("store")})
    verdict = rules.owner_role(
        sources.actor, lambda who: read_roles(sources.store, who, sources.store_data_path)
    )
    if verdict.store_unreadable and args.get_config().get("unreadable_store") == "warn":
        sys.stderr.write(f"warning: {verdict.messages[0]}\n")
        return
    for message in verdict.messages:
        report(message, None)


def read_roles(store: str | None, actor: str, data_path: str | None) -> list[str] | None:
    """The actor's roles from the store's registry, read only; None for a store not made yet."""
    from circlecost.access import roles_for_policy

    roles: list[str] | None = roles_for_policy(store, actor, data_path)
    return roles


def check_price_sanity(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = integration_inputs(args)
    if props is None:
        return
    schedule = props.get("priceSchedule") or []
    for message in rules.price_sanity(args.name, props.get("pricePerCredit"), schedule):
        report(message, None)


def check_budget_status(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != BUDGET_TYPE:
        return
    for message in rules.budget_status(args.name, dict(args.props)):
        report(message, None)


PolicyPack(
    name="circlecost",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        StackValidationPolicy(
            name="circlecost-dedicated-token",
            description="No two circlecost integrations share a CircleCI token.",
            validate=check_dedicated_tokens,
        ),
        ResourceValidationPolicy(
            name="circlecost-token-rotation",
            description="Each integration's token expires, in the future but not too far ahead.",
            validate=check_token_rotation,
            config_schema=PolicyConfigSchema(
                properties={
                    "max_token_lifetime_days": {"type": "integer", "default": 90, "minimum": 1}
                }
            ),
        ),
        ResourceValidationPolicy(
            name="circlecost-token-expiry-warning",
            description="Warns when an integration's token expires soon.",
            enforcement_level=EnforcementLevel.ADVISORY,
            validate=check_token_expiry_soon,
            config_schema=PolicyConfigSchema(
                properties={"warn_days": {"type": "integer", "default": 14, "minimum": 0}}
            ),
        ),
        ResourceValidationPolicy(
            name="circlecost-owner-role",
            description="Only Organization Owners and Integration Owners change integrations.",
            validate=check_owner_role,
            config_schema=PolicyConfigSchema(
                properties={
                    "unreadable_store": {
                        "type": "string",
                        "enum": ["fail", "warn"],
                        "default": "fail",
                    }
                }
            ),
        ),
        ResourceValidationPolicy(
            name="circlecost-price-sanity",
            description="Price per credit is in (0, 0.01] USD, dated prices included.",
            enforcement_level=EnforcementLevel.ADVISORY,
            validate=check_price_sanity,
        ),
        ResourceValidationPolicy(
            name="circlecost-budget-status",
            description="Warns when a budget's spending this month has reached a threshold.",
            enforcement_level=EnforcementLevel.ADVISORY,
            validate=check_budget_status,
        ),
    ],
)
