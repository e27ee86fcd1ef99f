"""circlecost's reference stack: CircleCI integrations, workspaces and bindings from stack config.

A platform repo copies this file and changes only its `Pulumi.<stack>.yaml`:

    config:
      circlecost:actor: ana
      circlecost:integrations:
        - name: acme                    # Pulumi resource name
          organizationId: <org UUID>
          tokenExpiresOn: "2027-02-01"
          pricePerCredit: "0.0006"      # optional; also description, priceSchedule,
                                        # backfillMonths, adopt, tokenConfig
      circlecost:workspaces:
        - name: platform
          description: Platform team
          integrations: [acme]
      circlecost:virtualTags:
        - key: team                     # reports: --group-by vtag:team
          rules:                        # first match wins
            - value: payments
              filter: costs.account IN ('api', 'billing')
          defaultValue: shared          # optional; else (untagged)
      circlecost:alertChannels:
        - name: finops                  # its URL: secret key circlecost:finops-webhook
          anomalies: true               # optional: also cost anomalies (by anomalyGroupBy)
      circlecost:budgets:
        - name: platform-monthly
          amountUsd: 400                # per month
          workspace: platform           # optional: a workspace above; else every cost
          thresholds: [0.8, 1.0]        # optional; also filter (VQL)
          alertChannels: [finops]       # optional
      circlecost:finops-webhook:        # `pulumi config set --secret circlecost:finops-webhook ...`
        secure: ...
      circlecost:acme-token:            # `pulumi config set --secret circlecost:acme-token ...`
        secure: ...

Each integration's token is read from the secret config key `circlecost:<name>-token`
(or the key named by its `tokenConfig`), each alert channel's webhook URL from
`circlecost:<name>-webhook`.

Keys are camelCase. The snake_case spellings of earlier versions (`organization_id`, ...) still
work, with a warning that names the new key. A key circlecost does not know, in an entry or in
the `circlecost:` namespace, stops the program with one line that suggests the closest key.
"""

from difflib import get_close_matches
from typing import Any, NoReturn

import pulumi
from pydantic import ValidationError

from circlecost.models import (
    AlertChannelInputs,
    BudgetInputs,
    IntegrationSpec,
    VirtualTagInputs,
    camel_case_names,
    field_errors,
    renames,
)
from circlecost.resources import (
    SETTING_KEYS,
    AlertChannel,
    Budget,
    Integration,
    VirtualTag,
    Workspace,
    WorkspaceBinding,
)

NAMESPACE = "circlecost"
# Each key of an integrations entry, in either spelling, and its camelCase name: the
# Integration's inputs but its token, and the entry's own `name` and `tokenConfig`.
ENTRY_KEYS = {
    **{key: alias for key, (alias, _items) in renames(IntegrationSpec).items()},
    "name": "name",
    "tokenConfig": "tokenConfig",
    "token_config": "tokenConfig",
}
# An Integration's keyword argument for each camelCase input name.
ARGUMENTS = {info.alias or name: name for name, info in IntegrationSpec.model_fields.items()}
WORKSPACE_KEYS = ("name", "description", "integrations")
TOKEN_SUFFIX = "-token"
WEBHOOK_SUFFIX = "-webhook"

config = pulumi.Config(NAMESPACE)


def stop(where: str, message: str) -> NoReturn:
    """Ends the program with one line and no traceback: the SDK prints a RunError's text."""
    raise pulumi.RunError(f"{where}: {message} (in Pulumi.{pulumi.get_stack()}.yaml)")


def did_you_mean(key: str, known: list[str], prefix: str = "") -> str:
    """The closest known key, else the list of them."""
    close = get_close_matches(key, known, n=1)
    if close:
        return f"; did you mean {prefix}{close[0]}?"
    return f" (known: {', '.join(prefix + name for name in known)})"


def entries(key: str) -> list[dict[str, Any]]:
    value = config.get_object(key) or []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        stop(f"{NAMESPACE}:{key}", "must be a list of entries (mappings)")
    return [dict(item) for item in value]


def entry_name(where: str, entry: dict[str, Any], kind: str) -> str:
    name = entry.get("name")
    if not isinstance(name, str) or not name.strip():
        stop(where, f"every {kind} needs a `name`")
    return name


def token_key(entry: dict[str, Any]) -> str:
    chosen = entry.get("tokenConfig") or entry.get("token_config")
    return str(chosen or f"{entry.get('name')}{TOKEN_SUFFIX}")


# --- the circlecost: namespace ------------------------------------------------------------------


def namespace_keys() -> list[str]:
    """Every `circlecost:` key of the stack's config, without the namespace."""
    values = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    prefix = f"{NAMESPACE}:"
    return sorted(key.removeprefix(prefix) for key in values if key.startswith(prefix))


def check_namespace(token_keys: set[str]) -> None:
    """Refuses a `circlecost:` key that is no setting, suggesting the closest one. An unused
    `<name>-token` key is refused only when it looks like the token key of an integration that
    has none (a typo); otherwise (left from a removed integration, say) it gets a warning."""
    keys = namespace_keys()
    lists = ("integrations", "workspaces", "virtualTags", "alertChannels", "budgets")
    known = sorted({*SETTING_KEYS, *lists, *token_keys})
    missing_tokens = sorted(token_keys - set(keys))
    for key in keys:
        if key in known:
            continue
        if key.endswith(TOKEN_SUFFIX) and not get_close_matches(key, missing_tokens, n=1):
            pulumi.log.warn(
                f"{NAMESPACE}:{key} is the token of no integration in {NAMESPACE}:integrations: "
                f"remove it with `pulumi config rm {NAMESPACE}:{key}` when it is not needed"
            )
            continue
        stop(
            f"{NAMESPACE}:{key}",
            "is not a circlecost setting" + did_you_mean(key, known, f"{NAMESPACE}:"),
        )


def check_settings() -> None:
    """The settings that the provider reads as numbers or booleans."""
    for key in ("createTimeoutSeconds", "bindingTimeoutSeconds"):
        value = config.get(key)
        if value:
            try:
                seconds = float(value)
            except ValueError:
                seconds = float("nan")
            if not seconds > 0:
                stop(f"{NAMESPACE}:{key}", f"{value!r} is not a number of seconds, e.g. 600")
    loopback = config.get("allowLoopbackDownloads")
    if loopback and loopback.lower() not in ("true", "false"):
        stop(f"{NAMESPACE}:allowLoopbackDownloads", f"{loopback!r} is neither true nor false")


# --- integrations -------------------------------------------------------------------------------


def check_entry_keys(where: str, entry: dict[str, Any]) -> None:
    """Every key is known, and given in one spelling only."""
    known = sorted(set(ENTRY_KEYS.values()))
    for key in entry:
        new = ENTRY_KEYS.get(key)
        if new is None:
            stop(
                f"{where}.{key}",
                f"unknown key{did_you_mean(key, known)}",
            )
        if new != key and new in entry:
            stop(
                f"{where}.{key}",
                f"is the old spelling of {new}, which is also set: keep only {new}",
            )


def integration_arguments(where: str, entry: dict[str, Any]) -> dict[str, Any]:
    """The Integration's keyword arguments, once the entry's values are valid. An error names
    the key as the entry spells it; each old spelling gets a warning that names the new key."""
    declared = {
        key: value for key, value in entry.items() if ENTRY_KEYS[key] not in ("name", "tokenConfig")
    }
    try:
        IntegrationSpec.model_validate(declared)
    except ValidationError as error:
        field, reason = field_errors(error, IntegrationSpec)[0]
        stop(f"{where}.{field}", reason)
    renamed: list[tuple[str, str]] = (
        [("token_config", "tokenConfig")] if "token_config" in entry else []
    )
    inputs = camel_case_names(declared, IntegrationSpec, renamed=renamed)
    for old, new in sorted(renamed):
        pulumi.log.warn(
            f"{where}.{old} is deprecated: rename it to {new} "
            f"(circlecost's stack config keys are camelCase)"
        )
    return {ARGUMENTS[key]: value for key, value in inputs.items()}


def checked_integrations(raw: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, token key, keyword arguments) of each entry, or a stop at the first bad one."""
    checked: list[tuple[str, str, dict[str, Any]]] = []
    for index, entry in enumerate(raw):
        where = f"{NAMESPACE}:integrations[{index}]"
        check_entry_keys(where, entry)
        name = entry_name(where, entry, "integration")
        if name in [earlier for earlier, _key, _arguments in checked]:
            stop(where, f"'{name}' is declared twice: give each integration its own name")
        arguments = integration_arguments(where, entry)
        key = token_key(entry)
        if config.get_secret(key) is None:
            stop(
                where,
                f"no token for '{name}': "
                f"run `pulumi config set --secret {NAMESPACE}:{key} <token>`",
            )
        checked.append((name, key, arguments))
    return checked


# --- workspaces ---------------------------------------------------------------------------------


def checked_workspaces(raw: list[dict[str, Any]], integrations: set[str]) -> list[dict[str, Any]]:
    for index, entry in enumerate(raw):
        where = f"{NAMESPACE}:workspaces[{index}]"
        for key in entry:
            if key not in WORKSPACE_KEYS:
                known = list(WORKSPACE_KEYS)
                stop(
                    f"{where}.{key}",
                    f"unknown key{did_you_mean(key, known)}",
                )
        entry_name(where, entry, "workspace")
        names = entry.get("integrations", [])
        if not isinstance(names, list):
            stop(f"{where}.integrations", "must be a list of integration names, e.g. [acme]")
        for name in names:
            if name not in integrations:
                close = get_close_matches(str(name), sorted(integrations), n=1)
                stop(
                    f"{where}.integrations",
                    f"'{name}' is not one of the integrations {sorted(integrations)}"
                    + (f"; did you mean {close[0]}?" if close else ""),
                )
    return raw


def declare_workspace(entry: dict[str, Any], integrations: dict[str, Integration]) -> Workspace:
    name = entry["name"]
    workspace = Workspace(f"workspace-{name}", name=name, description=entry.get("description", ""))
    for integration_name in entry.get("integrations", []):
        WorkspaceBinding(
            f"{name}-{integration_name}",
            workspace_id=workspace.id,
            integration_id=integrations[integration_name].id,
        )
    return workspace


# --- virtual tags -------------------------------------------------------------------------------


def checked_virtual_tags(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each entry is a VirtualTag's inputs (key, rules, defaultValue, description); a bad rule
    stops the program with the entry, rule and field it is in."""
    keys: list[str] = []
    for index, entry in enumerate(raw):
        where = f"{NAMESPACE}:virtualTags[{index}]"
        try:
            inputs = VirtualTagInputs.model_validate(entry)
        except ValidationError as error:
            field, reason = field_errors(error, VirtualTagInputs)[0]
            stop(f"{where}.{field}", reason)
        if inputs.key in keys:
            stop(f"{where}.key", f"'{inputs.key}' is declared twice: give each tag its own key")
        keys.append(inputs.key)
    return raw


def declare_virtual_tag(entry: dict[str, Any], integrations: list[Integration]) -> VirtualTag:
    """A VirtualTag, after the integrations: its `rule_effect` then counts this run's imports."""
    inputs = VirtualTagInputs.model_validate(entry)
    return VirtualTag(
        f"vtag-{inputs.key}",
        key=inputs.key,
        rules=[{"value": rule.value, "filter": rule.filter} for rule in inputs.rules],
        default_value=inputs.default_value,
        description=inputs.description,
        opts=pulumi.ResourceOptions(depends_on=integrations),
    )


# --- alert channels and budgets ------------------------------------------------------------------


def checked_entries(
    key: str, raw: list[dict[str, Any]], model: Any, references: dict[str, set[str]]
) -> list[dict[str, Any]]:
    """Entries of `model`'s inputs; `references` maps an entry key that names other entries
    (a budget's `workspace`, its `alertChannels`) to the names it may take."""
    names: list[str] = []
    for index, entry in enumerate(raw):
        where = f"{NAMESPACE}:{key}[{index}]"
        name = entry_name(where, entry, key.rstrip("s"))
        if name in names:
            stop(where, f"'{name}' is declared twice: give each its own name")
        names.append(name)
        for field, known in references.items():
            given = entry.get(field)
            for item in given if isinstance(given, list) else [given] if given else []:
                if item not in known:
                    stop(f"{where}.{field}", f"'{item}' is not one of {sorted(known)}")
        values = {k: v for k, v in entry.items() if k not in references}
        if model is AlertChannelInputs:
            # The URL is a secret, known only as an Output here: the provider checks it.
            values["url"] = "https://webhook.invalid"
        try:
            model.model_validate(values)
        except ValidationError as error:
            field, reason = field_errors(error, model)[0]
            stop(f"{where}.{field}", reason)
    return raw


def declare_alert_channel(entry: dict[str, Any]) -> AlertChannel:
    name = entry["name"]
    url = config.get_secret(name + WEBHOOK_SUFFIX)
    if url is None:
        stop(
            f"{NAMESPACE}:alertChannels",
            f"no webhook URL for '{name}': run "
            f"`pulumi config set --secret {NAMESPACE}:{name}{WEBHOOK_SUFFIX} <url>`",
        )
    return AlertChannel(
        f"alerts-{name}",
        name=name,
        url=url,
        anomalies=bool(entry.get("anomalies", False)),
        anomaly_group_by=entry.get("anomalyGroupBy", "account"),
    )


def declare_budget(
    entry: dict[str, Any],
    workspaces_by_name: dict[str, Workspace],
    channels: dict[str, AlertChannel],
    after: list[pulumi.Resource],
) -> Budget:
    """A Budget, `after` the integrations (its first figures then count this run's imports) and
    the virtual tags (its filter may name one)."""
    workspace = entry.get("workspace")
    return Budget(
        f"budget-{entry['name']}",
        name=entry["name"],
        amount_usd=str(entry["amountUsd"]),
        workspace_id=workspaces_by_name[workspace].id if workspace else None,
        period=entry.get("period", "month"),
        thresholds=entry.get("thresholds"),
        filter=entry.get("filter"),
        alert_channel_ids=[channels[name].id for name in entry.get("alertChannels", [])],
        opts=pulumi.ResourceOptions(depends_on=after),
    )


# Everything is checked before anything is declared: a bad entry changes nothing.
integration_entries, workspace_entries = entries("integrations"), entries("workspaces")
virtual_tag_entries = checked_virtual_tags(entries("virtualTags"))
channel_entries = checked_entries("alertChannels", entries("alertChannels"), AlertChannelInputs, {})
budget_entries = checked_entries(
    "budgets",
    entries("budgets"),
    BudgetInputs,
    {
        "workspace": {str(entry.get("name")) for entry in workspace_entries},
        "alertChannels": {str(entry.get("name")) for entry in channel_entries},
    },
)
check_namespace(
    {token_key(entry) for entry in integration_entries}
    | {f"{entry['name']}{WEBHOOK_SUFFIX}" for entry in channel_entries}
)
check_settings()
declared_integrations = checked_integrations(integration_entries)
declared_workspaces = checked_workspaces(
    workspace_entries, {name for name, _key, _arguments in declared_integrations}
)

integrations = {
    name: Integration(name, token=config.require_secret(key), **arguments)
    for name, key, arguments in declared_integrations
}
workspaces = [declare_workspace(entry, integrations) for entry in declared_workspaces]
virtual_tags = {
    entry["key"]: declare_virtual_tag(entry, list(integrations.values()))
    for entry in virtual_tag_entries
}
channels = {entry["name"]: declare_alert_channel(entry) for entry in channel_entries}
workspaces_by_name = {
    entry["name"]: workspace
    for entry, workspace in zip(declared_workspaces, workspaces, strict=True)
}
budgets = {
    entry["name"]: declare_budget(
        entry, workspaces_by_name, channels, [*integrations.values(), *virtual_tags.values()]
    )
    for entry in budget_entries
}

pulumi.export(
    "integrations",
    {
        name: {
            "id": integration.id,
            "organization": integration.organization_name,
            "status": integration.status,
            "detail": integration.status_detail,
            "line_items": integration.line_items,
            "total_cost_usd": integration.total_cost_usd,
        }
        for name, integration in integrations.items()
    },
)
pulumi.export("workspaces", [workspace.id for workspace in workspaces])
pulumi.export("virtual_tags", {key: tag.rule_effect for key, tag in virtual_tags.items()})
pulumi.export(
    "budgets",
    {
        name: {
            "status": budget.status,
            "spent_usd": budget.spent_usd,
            "forecast_usd": budget.forecast_usd,
        }
        for name, budget in budgets.items()
    },
)
pulumi.export("alert_channels", {name: channel.alerts_sent for name, channel in channels.items()})
