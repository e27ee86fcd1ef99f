"""circlecost's Pulumi resources: Integration, Workspace, WorkspaceBinding, VirtualTag, Budget
and AlertChannel.

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

from circlecost import chargeback, service
from circlecost.errors import CirclecostError
from circlecost.lifeline import end_with_pulumi_cli
from circlecost.models import (
    AlertChannelInputs,
    BindingInputs,
    BudgetInputs,
    IntegrationInputs,
    VirtualTagInputs,
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
# A VirtualTag's own output (with store_id): what its rules do to the costs, made in `check`
# so that a preview shows it.
VIRTUAL_TAG_OUTPUTS = ("rule_effect",)
# A Budget's outputs: its figures this month, made in `check` too (the policy pack reads them in
# a preview) and again by create, update and refresh.
BUDGET_OUTPUTS = ("spent_usd", "forecast_usd", "status", "period_start", "period_end", "as_of")
# An AlertChannel's outputs.
CHANNEL_OUTPUTS = ("url_fingerprint", "alerts_sent", "last_error")
OUTPUT_NAMES = frozenset(
    INTEGRATION_OUTPUTS + VIRTUAL_TAG_OUTPUTS + BUDGET_OUTPUTS + CHANNEL_OUTPUTS
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

    @pulumi_failures
    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        """Validates the known inputs; an input not known until apply (a preview of a new
        workspace's id, say) is checked when it is known, at `pulumi up`. Valid, known inputs
        get the resource's planned outputs beside them."""
        inputs = without_unknown_objects(news)
        given = user_inputs(inputs)
        pending = {key for key, value in given.items() if contains_unknown(value)}
        known = {key: value for key, value in given.items() if key not in pending}
        failures = [
            CheckFailure(field, reason)
            for field, reason in validate(self.inputs_model, known)
            if field.split(".")[0] not in pending
        ]
        if failures or pending:
            return CheckResult(inputs, failures)
        return CheckResult({**inputs, **self.planned_outputs(olds, inputs)}, [])

    def planned_outputs(self, _olds: dict[str, Any], _news: dict[str, Any]) -> dict[str, Any]:
        """Outputs a preview should show, measured from valid, known inputs (a preview runs
        `check` but not a dynamic provider's create or update); none by default."""
        return {}

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
            if not key.startswith("__") and key not in CONTEXT_INPUTS and key not in OUTPUT_NAMES
        }
    )


def changed_inputs(
    olds: dict[str, Any], news: dict[str, Any], keys: tuple[str, ...] | None = None
) -> list[str]:
    """The declared inputs (of `keys`, else all) whose values differ, sorted; outputs made in
    `check` and the context inputs never count."""
    before, after = user_inputs(olds), user_inputs(news)
    names = keys if keys is not None else set(before) | set(after)
    return sorted(key for key in names if before.get(key) != after.get(key))


def validate(model: type[BaseModel], values: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        model.model_validate(values)
    except ValidationError as error:
        return field_errors(error, model)
    return []


# --- Integration ------------------------------------------------------------------------------


class IntegrationProvider(CirclecostProvider):
    inputs_model = IntegrationInputs

    @pulumi_failures
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        self.require_store_of(olds, f"integration {id_}")
        changed = changed_inputs(olds, news)
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
        changed = changed_inputs(olds, news, ("name", "description"))
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
        changed = changed_inputs(olds, news, ("workspaceId", "integrationId"))
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


# --- VirtualTag ---------------------------------------------------------------------------------


class VirtualTagProvider(CirclecostProvider):
    inputs_model = VirtualTagInputs

    def planned_outputs(self, olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        """`rule_effect`: the cost each value gets and the cost that moves between values, for
        the reviewer of a preview."""
        effect = service.virtual_tag_effect(
            self.settings, self.parsed_or_none(olds), self.parse(news)
        )
        return {"rule_effect": effect}

    def parsed_or_none(self, props: dict[str, Any]) -> VirtualTagInputs | None:
        """The old inputs, when there are any (none on create)."""
        try:
            return cast(VirtualTagInputs, self.parse(props)) if props else None
        except ValidationError:
            return None

    @pulumi_failures
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The effect changes with every import; only the rules make a change.
        self.require_store_of(olds, f"virtual tag {id_}")
        return DiffResult(changes=bool(changed_inputs(olds, news)), replaces=[])

    @pulumi_failures
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = self.parse(props)
        tag_id = service.create_virtual_tag(self.settings, inputs)
        effect = service.virtual_tag_effect(self.settings, None, inputs)
        return CreateResult(tag_id, {**props, "rule_effect": effect, **self.store_output()})

    @pulumi_failures
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        """Stores the new rules; `rule_effect` is measured again on the costs of this moment
        (an import in the same update may have added some since the preview)."""
        self.require_store_of(olds, f"virtual tag {id_}")
        old, new = self.parsed_or_none(olds), self.parse(news)
        service.update_virtual_tag(self.settings, id_, new)
        effect = service.virtual_tag_effect(self.settings, old, new)
        return UpdateResult({**news, "rule_effect": effect, **self.store_output()})

    @pulumi_failures
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        self.require_store_of(props, f"virtual tag {id_}")
        if not service.virtual_tag_exists(self.settings, id_):
            return ReadResult(None, {})  # deleted from its own store: Pulumi forgets it
        return ReadResult(id_, props)

    @pulumi_failures
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self.require_store_of(props, f"virtual tag {id_}")
        service.delete_virtual_tag(self.settings, id_)


class VirtualTag(Resource, module="circlecost", name="VirtualTag"):
    """A key whose value every cost gets from rules: VQL filters tried in order, the first match
    giving its value; a cost no rule matches gets `default_value`, else `(untagged)`.

    Reports group by it (`--group-by vtag:<key>`) and filter on it (`vtags.<key> = '...'`).
    `rule_effect` says what the rules do to the imported costs; a preview shows it.
    """

    rule_effect: pulumi.Output[dict[str, Any] | None]
    store_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        key: pulumi.Input[str],
        rules: pulumi.Input[list[dict[str, Any]]],
        default_value: pulumi.Input[str] | None = None,
        description: pulumi.Input[str] = "",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        inputs: dict[str, Any] = {
            "key": key,
            "rules": rules,
            "description": description,
            **({"defaultValue": default_value} if default_value is not None else {}),
            **context_inputs(),
            "rule_effect": None,
            "store_id": None,
        }
        super().__init__(VirtualTagProvider(), resource_name, inputs, opts)


# --- Budget -------------------------------------------------------------------------------------


class BudgetProvider(CirclecostProvider):
    inputs_model = BudgetInputs

    def planned_outputs(self, _olds: dict[str, Any], news: dict[str, Any]) -> dict[str, Any]:
        """This month's figures as the budget would show them, so that the policy pack can warn
        in a preview of a budget over a threshold."""
        return dict(chargeback.planned_status(self.settings, self.parse(news)) or {})

    @pulumi_failures
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # The figures change every day; only the declared inputs make a change.
        self.require_store_of(olds, f"budget {id_}")
        return DiffResult(changes=bool(changed_inputs(olds, news)), replaces=[])

    @pulumi_failures
    def create(self, props: dict[str, Any]) -> CreateResult:
        budget_id = chargeback.put_budget(self.settings, self.parse(props))
        return CreateResult(budget_id, {**props, **self.figures(budget_id)})

    @pulumi_failures
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.require_store_of(olds, f"budget {id_}")
        chargeback.put_budget(self.settings, self.parse(news), id_)
        return UpdateResult({**news, **self.figures(id_)})

    @pulumi_failures
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        self.require_store_of(props, f"budget {id_}")
        figures = chargeback.budget_status(self.settings, id_)
        if figures is None:
            return ReadResult(None, {})  # deleted from its own store: Pulumi forgets it
        return ReadResult(id_, {**props, **figures, **self.store_output()})

    @pulumi_failures
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self.require_store_of(props, f"budget {id_}")
        chargeback.delete_budget(self.settings, id_)

    def figures(self, budget_id: str) -> dict[str, Any]:
        return {**(chargeback.budget_status(self.settings, budget_id) or {}), **self.store_output()}


class Budget(Resource, module="circlecost", name="Budget"):
    """A monthly spending limit for a workspace's costs (every cost without one, narrowed by an
    optional VQL filter). Outputs, refreshed by `pulumi refresh`: `spent_usd` this month,
    `forecast_usd` (linear run-rate to the month's end), `status` ok, warning or over."""

    spent_usd: pulumi.Output[float]
    forecast_usd: pulumi.Output[float]
    status: pulumi.Output[str]
    period_start: pulumi.Output[str]
    period_end: pulumi.Output[str]
    as_of: pulumi.Output[str]
    store_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        amount_usd: pulumi.Input[float | str],
        name: pulumi.Input[str] | None = None,
        workspace_id: pulumi.Input[str] | None = None,
        period: pulumi.Input[str] = "month",
        thresholds: pulumi.Input[list[float]] | None = None,
        filter: pulumi.Input[str] | None = None,
        alert_channel_ids: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        declared = {
            "name": name or resource_name,
            "amountUsd": str(amount_usd) if isinstance(amount_usd, float) else amount_usd,
            "workspaceId": workspace_id,
            "period": period,
            "thresholds": [str(t) for t in thresholds]
            if isinstance(thresholds, list)
            else thresholds,
            "filter": filter,
            "alertChannelIds": alert_channel_ids,
        }
        inputs: dict[str, Any] = {
            **{key: value for key, value in declared.items() if value is not None},
            **context_inputs(),
            **{name: None for name in (*BUDGET_OUTPUTS, "store_id")},
        }
        super().__init__(BudgetProvider(), resource_name, inputs, opts)


# --- AlertChannel -------------------------------------------------------------------------------


class AlertChannelProvider(CirclecostProvider):
    inputs_model = AlertChannelInputs

    @pulumi_failures
    def diff(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        self.require_store_of(olds, f"alert channel {id_}")
        return DiffResult(changes=bool(changed_inputs(olds, news)), replaces=[])

    @pulumi_failures
    def create(self, props: dict[str, Any]) -> CreateResult:
        inputs = self.parse(props)
        channel_id = chargeback.put_alert_channel(self.settings, inputs)
        return CreateResult(channel_id, {**props, **self.deliver(channel_id, inputs)})

    @pulumi_failures
    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        self.require_store_of(olds, f"alert channel {id_}")
        inputs = self.parse(news)
        chargeback.put_alert_channel(self.settings, inputs, id_)
        return UpdateResult({**news, **self.deliver(id_, inputs)})

    @pulumi_failures
    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """A refresh sends the alerts due since the last one (each once)."""
        self.require_store_of(props, f"alert channel {id_}")
        if self.settings.reader().get_alert_channel(id_) is None:
            return ReadResult(None, {})
        return ReadResult(id_, {**props, **self.deliver(id_, self.parse(props))})

    @pulumi_failures
    def delete(self, id_: str, props: dict[str, Any]) -> None:
        self.require_store_of(props, f"alert channel {id_}")
        chargeback.delete_alert_channel(self.settings, id_)

    def deliver(self, channel_id: str, inputs: AlertChannelInputs) -> dict[str, Any]:
        url = inputs.url.get_secret_value()
        outputs = chargeback.deliver_alerts(self.settings, channel_id, url)
        return {**outputs, **self.store_output()}


class AlertChannel(Resource, module="circlecost", name="AlertChannel"):
    """A webhook (Slack-compatible: a JSON body {"text": ...}) that hears, once each, of the
    thresholds its budgets cross and, with `anomalies`, of cost anomalies. The URL is a secret;
    the store keeps only its fingerprint."""

    url_fingerprint: pulumi.Output[str]
    alerts_sent: pulumi.Output[int]
    last_error: pulumi.Output[str | None]
    store_id: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        url: pulumi.Input[str],
        name: pulumi.Input[str] | None = None,
        anomalies: pulumi.Input[bool] = False,
        anomaly_group_by: pulumi.Input[str] = "account",
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        inputs: dict[str, Any] = {
            "name": name or resource_name,
            "url": pulumi.Output.secret(url),
            "anomalies": anomalies,
            "anomalyGroupBy": anomaly_group_by,
            **context_inputs(),
            **{name: None for name in (*CHANNEL_OUTPUTS, "store_id")},
        }
        super().__init__(AlertChannelProvider(), resource_name, inputs, opts)
