"""circlecost's Pulumi resources: Integration, Workspace and WorkspaceBinding.

The only module that imports `pulumi.dynamic`. Each provider method translates Pulumi's dicts
into a call on `circlecost.service` and back. Providers are pickled into the state and re-imported
by the dynamic-provider process, so they hold no client, connection or secret: stack config is
read in `configure`, in that process.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar, cast

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
from pulumi.output import Unknown
from pydantic import BaseModel, ValidationError

from circlecost import service
from circlecost.errors import CirclecostError
from circlecost.lifeline import end_with_pulumi_cli
from circlecost.models import (
    BindingInputs,
    IntegrationInputs,
    WorkspaceInputs,
    camel_case_inputs,
    camel_case_names,
    field_errors,
)
from circlecost.settings import CONFIG_KEYS, Settings, load_settings, read_sources

# Pulumi's placeholder on the wire for a value not known until apply (a preview).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
# Inputs every resource carries so that policies can see who acts on which store, and the
# provider which stack asks; they never cause a diff.
CONTEXT_INPUTS = ("actor", "store", "stack")
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
    "store_id",  # every resource's: the identity of the store it lives in
)


# The settings read from stack config, `circlecost:<key>` (README "Settings" gives each one's
# environment variable). The reference stack refuses other keys of the namespace, but for its
# `integrations`, `workspaces` and token keys.
SETTING_KEYS = tuple(CONFIG_KEYS)


def settings_from_config(config: Any) -> Settings:
    """Stack config `circlecost:*` (the provider's configure request) over CIRCLECOST_*
    variables over defaults."""
    given = {key: config.get(f"circlecost:{key}") for key in CONFIG_KEYS}
    return load_settings(given, process_kind="pulumi up")


class CirclecostProvider(ResourceProvider):
    """Shared plumbing: settings from config, validation, readable failures."""

    inputs_model: ClassVar[type[BaseModel]]
    _settings: Settings | None = None

    def configure(self, req: ConfigureRequest) -> None:
        end_with_pulumi_cli()  # in the provider process the CLI started
        self._settings = settings_from_config(req.config)

    @property
    def settings(self) -> Settings:
        return self._settings or load_settings(process_kind="pulumi up")

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validates the known inputs; an input not known until apply (a preview of a new
        workspace's id, say) is checked when it is known, at `pulumi up`."""
        inputs = without_unknown_objects(news)
        given = user_inputs(inputs)
        pending = {key for key, value in given.items() if contains_unknown(value)}
        known = {key: value for key, value in given.items() if key not in pending}
        failures = [
            CheckFailure(field, reason)
            for field, reason in validate(self.inputs_model, known)
            if field.split(".")[0] not in pending
        ]
        return CheckResult(inputs, failures)

    def require_store_of(self, recorded: dict[str, Any], what: str) -> None:
        """Fails (leaving the state as it is) when `what` lives in another store."""
        service.require_recorded_store(self.settings, recorded.get("store_id"), what)

    def store_output(self) -> dict[str, str]:
        return {"store_id": service.store_identity(self.settings)}

    def parse(self, props: dict[str, Any]) -> Any:
        return self.inputs_model.model_validate(user_inputs(props))


def contains_unknown(value: Any) -> bool:
    """Whether a value, or anything inside it, is not known until apply."""
    if isinstance(value, dict):
        return any(contains_unknown(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(item) for item in value)
    return isinstance(value, Unknown) or (isinstance(value, str) and value == UNKNOWN)


def without_unknown_objects(value: Any) -> Any:
    """The SDK hands check/diff `pulumi.output.Unknown` objects for unknown values (and the
    sentinel string in some places); give back the sentinel everywhere, which is what the engine
    reads as unknown when the inputs go back to it."""
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {key: without_unknown_objects(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [without_unknown_objects(item) for item in value]
    return value


def user_inputs(props: dict[str, Any]) -> dict[str, Any]:
    """The declared inputs, without Pulumi's `__provider`, the context inputs and the outputs,
    with camelCase names: a state written before the rename (snake_case names) diffs and parses
    like one written after it.

    Unknown keys stay, so that a misspelt input fails validation instead of vanishing.
    """
    return camel_case_inputs(
        {
            key: value
            for key, value in props.items()
            if not key.startswith("__")
            and key not in CONTEXT_INPUTS
            and key not in INTEGRATION_OUTPUTS
        }
    )


def validate(model: type[BaseModel], values: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        model.model_validate(values)
    except ValidationError as error:
        return field_errors(error, model)
    return []


DEBUG_VARIABLE = "CIRCLECOST_DEBUG"

Method = TypeVar("Method", bound=Callable[..., Any])


def pulumi_failures(method: Method) -> Method:
    """Turns a circlecost error into the failure Pulumi shows: one sentence and its hint.

    Pulumi's dynamic-provider host prints the traceback of whatever a method raises; a person
    needs only the message, so the traceback is cut to nothing unless CIRCLECOST_DEBUG is set.
    Errors that are not circlecost's (bugs) keep their traceback.
    """

    @functools.wraps(method)
    def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except CirclecostError as error:
            if not os.environ.get(DEBUG_VARIABLE):
                sys.tracebacklimit = 0  # read by the host's traceback.format_exc()
            raise Exception(str(error)) from None
        except Exception:
            sys.__dict__.pop("tracebacklimit", None)  # a bug: show where it happened
            raise

    return cast(Method, translated)


# --- Integration ------------------------------------------------------------------------------


class IntegrationProvider(CirclecostProvider):
    inputs_model = IntegrationInputs

    @pulumi_failures
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        self.require_store_of(olds, f"integration {id_}")
        before, after = user_inputs(olds), user_inputs(news)
        changed = sorted(
            key for key in set(before) | set(after) if before.get(key) != after.get(key)
        )
        replaces = [key for key in changed if key == "organizationId"]
        unfinished = not changed and service.import_unfinished(self.settings, id_)
        return DiffResult(
            changes=bool(changed) or unfinished,
            replaces=replaces,
            delete_before_replace=bool(replaces),
        )

    @pulumi_failures
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = self.parse(props)
        integration_id, outputs = service.create_integration(
            self.settings, inputs, stack=props.get("stack") or None
        )
        return CreateResult(integration_id, {**props, **outputs})

    @pulumi_failures
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.require_store_of(olds, f"integration {id_}")
        old_inputs, new_inputs = self.parse(olds), self.parse(news)
        outputs = service.update_integration(self.settings, id_, old_inputs, new_inputs)
        return UpdateResult({**news, **outputs})

    @pulumi_failures
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Only an integration really gone from its own store may disappear from the state.
        self.require_store_of(props, f"integration {id_}")
        token = props.get("token")
        outputs = service.read_integration(
            self.settings, id_, token if isinstance(token, str) else None
        )
        if outputs is None:
            return ReadResult(None, {})  # gone from the store: Pulumi forgets it
        return ReadResult(id_, {**props, **outputs})

    @pulumi_failures
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self.require_store_of(props, f"integration {id_}")
        service.delete_integration(self.settings, id_)


class Integration(Resource, module="circlecost", name="Integration"):
    """A CircleCI organization whose usage circlecost imports and prices.

    Keyword arguments are snake_case, as in every Pulumi Python SDK; the inputs they become (in
    the state, and what policies see) are camelCase: `organizationId`, `pricePerCredit`, ...
    """

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
    store_id: pulumi.Output[str]

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
        declared = {
            "token": pulumi.Output.secret(token),
            "organization_id": organization_id,
            "description": description,
            "price_per_credit": str(price_per_credit)
            if isinstance(price_per_credit, float)
            else price_per_credit,
            "price_schedule": camel_case_schedule(price_schedule),
            "token_expires_on": token_expires_on,
            "backfill_months": backfill_months,
            "adopt": adopt or None,
        }
        inputs: dict[str, Any] = {
            **camel_case_names(
                {key: value for key, value in declared.items() if value is not None}
            ),
            **context_inputs(),
            **{name: None for name in INTEGRATION_OUTPUTS},
        }
        super().__init__(IntegrationProvider(), resource_name, inputs, opts)


def camel_case_schedule(schedule: Any) -> Any:
    """Dated prices with camelCase names (`effectiveFrom`, `pricePerCredit`) also when the list
    is known only later, an Output: `camel_case_names` renames a plain list itself."""
    if schedule is None or (
        isinstance(schedule, list | tuple)
        and not any(isinstance(entry, pulumi.Output) for entry in schedule)
    ):
        return schedule
    return pulumi.Output.from_input(schedule).apply(
        lambda entries: camel_case_names({"priceSchedule": entries})["priceSchedule"]
    )


def context_inputs() -> dict[str, Any]:
    config = pulumi.Config("circlecost")
    sources = read_sources({"actor": config.get("actor"), "store": config.get("store")})
    return {
        "actor": sources.actor or "",
        "store": sources.store or "",
        "stack": f"{pulumi.get_organization()}/{pulumi.get_project()}/{pulumi.get_stack()}",
    }


# --- Workspace ----------------------------------------------------------------------------------


class WorkspaceProvider(CirclecostProvider):
    inputs_model = WorkspaceInputs

    @pulumi_failures
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        self.require_store_of(olds, f"workspace {id_}")
        before, after = user_inputs(olds), user_inputs(news)
        changed = [key for key in ("name", "description") if before.get(key) != after.get(key)]
        return DiffResult(changes=bool(changed), replaces=[])

    @pulumi_failures
    def create(self, props: dict[str, Any]) -> CreateResult:
        workspace_id = service.create_workspace(self.settings, self.parse(props))
        return CreateResult(workspace_id, {**props, **self.store_output()})

    @pulumi_failures
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.require_store_of(olds, f"workspace {id_}")
        service.update_workspace(self.settings, id_, self.parse(news))
        return UpdateResult({**news, **self.store_output()})

    @pulumi_failures
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        self.require_store_of(props, f"workspace {id_}")
        return ReadResult(id_, props)

    @pulumi_failures
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self.require_store_of(props, f"workspace {id_}")
        service.delete_workspace(self.settings, id_)


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

    @pulumi_failures
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        self.require_store_of(olds, f"workspace binding {id_}")
        before, after = user_inputs(olds), user_inputs(news)
        changed = [
            key for key in ("workspaceId", "integrationId") if before.get(key) != after.get(key)
        ]
        return DiffResult(changes=bool(changed), replaces=changed, delete_before_replace=True)

    @pulumi_failures
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = self.parse(props)
        binding_id = service.create_binding(
            self.settings, inputs.workspace_id, inputs.integration_id
        )
        return CreateResult(binding_id, {**props, **self.store_output()})

    @pulumi_failures
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        self.require_store_of(props, f"workspace binding {id_}")
        return ReadResult(id_, props)

    @pulumi_failures
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self.require_store_of(props, f"workspace binding {id_}")
        inputs = self.parse(props)
        service.delete_binding(self.settings, inputs.workspace_id, inputs.integration_id)


class WorkspaceBinding(Resource, module="circlecost", name="WorkspaceBinding"):
    """Makes an integration's costs visible in a workspace, once its import is Stable.

    Its inputs are `workspaceId` and `integrationId`."""

    def __init__(
        self,
        resource_name: str,
        *,
        workspace_id: pulumi.Input[str],
        integration_id: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        inputs = {
            "workspaceId": workspace_id,
            "integrationId": integration_id,
            **context_inputs(),
        }
        super().__init__(WorkspaceBindingProvider(), resource_name, inputs, opts)
