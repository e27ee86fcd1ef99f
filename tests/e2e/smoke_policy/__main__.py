"""A one-rule policy pack: a Greeting's message must not be 'forbidden'."""

from pulumi_policy import (
    EnforcementLevel,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)


def no_forbidden_message(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type == "pulumi-python:dynamic/smoke:Greeting":
        if args.props.get("message") == "forbidden":
            report_violation("the message 'forbidden' is not allowed", None)


PolicyPack(
    name="smoke-policy",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="smoke-no-forbidden-message",
            description="A Greeting's message must not be 'forbidden'.",
            validate=no_forbidden_message,
        )
    ],
)
