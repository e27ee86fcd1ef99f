"""circlecost's Pulumi resources: Integration, Workspace and WorkspaceBinding.

The only module that imports `pulumi.dynamic`. Each provider method translates Pulumi's dicts
into a call on `provider.service` and back. Providers are pickled into the state and re-imported
by the dynamic-provider process, so they hold no client, connection or secret: stack config is
read in `configure`, in that process.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    ConfigureRequest,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)
from pydantic import BaseModel, ValidationError

from provider import service
from provider.errors import CirclecostError
from provider.models import BindingInputs, IntegrationInputs, WorkspaceInputs, field_errors

# Pulumi's placeholder for a value not known until apply.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# Inputs every resource carries so that policies can see who acts on which store; they never
# cause a diff.
CONTEXT_INPUTS = ("actor", "store")
INTEGRATION_OUTPUTS = (
    "organization_name",
    "token_user",
    "token_fingerprint",
    "token_rotated_at",
    "status",
    "status_detail",
    "imported_from",
    "imported_through",
    "line_items",
    "total_credits",
    "total_cost_usd",
)


def settings_from_config(config: Any) -> service.Settings:
    """Stack config `circlecost:*` first, then CIRCLECOST_* variables, then defaults."""

    def get(key: str) -> Any:
        value = config.get(f"circlecost:{key}")
        return None if value in (None, "") else value

    loopback = get("allowLoopbackDownloads")
    timeout = get("createTimeoutSeconds")
    binding_timeout = get("bindingTimeoutSeconds")
    return service.Settings.from_environment(
        store_path=Path(get("store")) if get("store") else None,
        circleci_url=get("circleciUrl"),
        actor=get("actor"),
        allow_loopback_downloads=str(loopback).lower() == "true" if loopback is not None else None,
        create_timeout=timedelta(seconds=float(timeout)) if timeout else None,
        binding_timeout=timedelta(seconds=float(binding_timeout)) if binding_timeout else None,
        process_kind="pulumi up",
    )


class CirclecostProvider(ResourceProvider):
    """Shared plumbing: settings from config, validation, readable failures."""

    inputs_model: ClassVar[type[BaseModel]]
    _settings: service.Settings | None = None

    def configure(self, req: ConfigureRequest) -> None:
        self._settings = settings_from_config(req.config)

    @property
    def settings(self) -> service.Settings:
        return self._settings or service.Settings.from_environment(process_kind="pulumi up")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        known = user_inputs(news)
        if any(value == UNKNOWN for value in known.values()):
            known = {key: value for key, value in known.items() if value != UNKNOWN}
            failures = [
                CheckFailure(field, reason)
                for field, reason in validate(self.inputs_model, known)
                if reason != "is required"
            ]
        else:
            failures = [
                CheckFailure(field, reason) for field, reason in validate(self.inputs_model, known)
            ]
        return CheckResult(news, failures)

    def parse(self, props: dict[str, Any]) -> Any:
        return self.inputs_model.model_validate(user_inputs(props))


def user_inputs(props: dict[str, Any]) -> dict[str, Any]:
    """The declared inputs, without Pulumi's `__provider`, the context inputs and the outputs.

    Unknown keys stay, so that a misspelt input fails validation instead of vanishing.
    """
    return {
        key: value
        for key, value in props.items()
        if not key.startswith("__") and key not in CONTEXT_INPUTS and key not in INTEGRATION_OUTPUTS
    }


def validate(model: type[BaseModel], values: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        model.model_validate(values)
    except ValidationError as error:
        return field_errors(error)
    return []


def failed(error: CirclecostError) -> Exception:
    """Pulumi shows the exception text; make it one actionable sentence."""
    return Exception(str(error))


# --- Integration ------------------------------------------------------------------------------


class IntegrationProvider(CirclecostProvider):
    inputs_model = IntegrationInputs

    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        before, after = user_inputs(olds), user_inputs(news)
        changed = sorted(
            key for key in set(before) | set(after) if before.get(key) != after.get(key)
        )
        replaces = [key for key in changed if key == "organization_id"]
        unfinished = not changed and service.import_unfinished(self.settings, id_)
        return DiffResult(
            changes=bool(changed) or unfinished,
            replaces=replaces,
            delete_before_replace=bool(replaces),
        )

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = self.parse(props)
        try:
            integration_id, outputs = service.create_integration(self.settings, inputs)
        except CirclecostError as error:
            raise failed(error) from None
        return CreateResult(integration_id, {**props, **outputs})

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old_inputs, new_inputs = self.parse(olds), self.parse(news)
        try:
            outputs = service.update_integration(self.settings, id_, old_inputs, new_inputs)
        except CirclecostError as error:
            raise failed(error) from None
        return UpdateResult({**news, **outputs})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        token = props.get("token")
        try:
            outputs = service.read_integration(
                self.settings, id_, token if isinstance(token, str) else None
            )
        except CirclecostError as error:
            raise failed(error) from None
        if outputs is None:
            return ReadResult(None, {})  # gone from the store: Pulumi forgets it
        return ReadResult(id_, {**props, **outputs})

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        try:
            service.delete_integration(self.settings, id_)
        except CirclecostError as error:
            raise failed(error) from None


class Integration(Resource, module="circlecost", name="Integration"):
    """A CircleCI organization whose usage circlecost imports and prices."""

    organization_name: pulumi.Output[str]
    token_user: pulumi.Output[str]
    token_fingerprint: pulumi.Output[str]
    token_rotated_at: pulumi.Output[str]
    status: pulumi.Output[str]
    status_detail: pulumi.Output[str]
    imported_from: pulumi.Output[str | None]
    imported_through: pulumi.Output[str | None]
    line_items: pulumi.Output[int]
    total_credits: pulumi.Output[float]
    total_cost_usd: pulumi.Output[float]

    def __init__(
        self,
        resource_name: str,
        *,
        token: pulumi.Input[str],
        organization_id: pulumi.Input[str],
        description: pulumi.Input[str] = "",
        price_per_credit: pulumi.Input[float | str] | None = None,
        price_schedule: pulumi.Input[list[dict[str, Any]]] | None = None,
        token_expires_on: pulumi.Input[str] | None = None,
        backfill_months: pulumi.Input[int] | None = None,
        adopt: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        inputs: dict[str, Any] = {
            "token": pulumi.Output.secret(token),
            "organization_id": organization_id,
            "description": description,
            **context_inputs(),
            **{name: None for name in INTEGRATION_OUTPUTS},
        }
        optional = {
            "price_per_credit": str(price_per_credit)
            if isinstance(price_per_credit, float)
            else price_per_credit,
            "price_schedule": price_schedule,
            "token_expires_on": token_expires_on,
            "backfill_months": backfill_months,
            "adopt": adopt or None,
        }
        inputs.update({key: value for key, value in optional.items() if value is not None})
        super().__init__(IntegrationProvider(), resource_name, inputs, opts)


def context_inputs() -> dict[str, Any]:
    config = pulumi.Config("circlecost")
    return {
        "actor": config.get("actor") or os.environ.get("CIRCLECOST_ACTOR") or "",
        "store": config.get("store") or os.environ.get("CIRCLECOST_STORE") or "",
    }


# --- Workspace ----------------------------------------------------------------------------------


class WorkspaceProvider(CirclecostProvider):
    inputs_model = WorkspaceInputs

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        before, after = user_inputs(olds), user_inputs(news)
        changed = [key for key in ("name", "description") if before.get(key) != after.get(key)]
        return DiffResult(changes=bool(changed), replaces=[])

    def create(self, props: dict[str, Any]) -> CreateResult:
        try:
            workspace_id = service.create_workspace(self.settings, self.parse(props))
        except CirclecostError as error:
            raise failed(error) from None
        return CreateResult(workspace_id, props)

    def update(self, id_: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        try:
            service.update_workspace(self.settings, id_, self.parse(news))
        except CirclecostError as error:
            raise failed(error) from None
        return UpdateResult(news)

    def delete(self, id_: str, _props: dict[str, Any]) -> None:
        try:
            service.delete_workspace(self.settings, id_)
        except CirclecostError as error:
            raise failed(error) from None


class Workspace(Resource, module="circlecost", name="Workspace"):
    """A named view of costs; it shows the costs of the integrations bound to it."""

    def __init__(
        self,
        resource_name: str,
        *,
        name: pulumi.Input[str],
        description: pulumi.Input[str] = "",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        inputs = {"name": name, "description": description, **context_inputs()}
        super().__init__(WorkspaceProvider(), resource_name, inputs, opts)


# --- WorkspaceBinding ---------------------------------------------------------------------------


class WorkspaceBindingProvider(CirclecostProvider):
    inputs_model = BindingInputs

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        before, after = user_inputs(olds), user_inputs(news)
        changed = [
            key for key in ("workspace_id", "integration_id") if before.get(key) != after.get(key)
        ]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = self.parse(props)
        try:
            binding_id = service.create_binding(
                self.settings, inputs.workspace_id, inputs.integration_id
            )
        except CirclecostError as error:
            raise failed(error) from None
        return CreateResult(binding_id, props)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        inputs = self.parse(props)
        try:
            service.delete_binding(self.settings, inputs.workspace_id, inputs.integration_id)
        except CirclecostError as error:
            raise failed(error) from None


class WorkspaceBinding(Resource, module="circlecost", name="WorkspaceBinding"):
    """Makes an integration's costs visible in a workspace, once its import is Stable."""

    def __init__(
        self,
        resource_name: str,
        *,
        workspace_id: pulumi.Input[str],
        integration_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        inputs = {
            "workspace_id": workspace_id,
            "integration_id": integration_id,
            **context_inputs(),
        }
        super().__init__(WorkspaceBindingProvider(), resource_name, inputs, opts)
