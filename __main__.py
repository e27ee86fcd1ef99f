"""circlecost's reference stack: CircleCI integrations, workspaces and bindings from stack config.

A platform repo copies this file and changes only its `Pulumi.<stack>.yaml`:

    config:
      circlecost:actor: ana
      circlecost:integrations:
        - name: acme                    # Pulumi resource name
          organization_id: <org UUID>
          token_expires_on: "2027-02-01"
          price_per_credit: "0.0006"    # optional; also description, price_schedule,
                                        # backfill_months, adopt, token_config
      circlecost:workspaces:
        - name: platform
          description: Platform team
          integrations: [acme]
      circlecost:acme-token:            # `pulumi config set --secret circlecost:acme-token ...`
        secure: ...

Each integration's token is read from the secret config key `circlecost:<name>-token`
(or the key named by its `token_config`).
"""

from typing import Any

import pulumi

from provider.resources import Integration, Workspace, WorkspaceBinding

INTEGRATION_KEYS = {
    "organization_id",
    "description",
    "price_per_credit",
    "price_schedule",
    "token_expires_on",
    "backfill_months",
    "adopt",
}

config = pulumi.Config("circlecost")


def entry_error(kind: str, index: int, message: str) -> Exception:
    return ValueError(
        f"circlecost:{kind}[{index}]: {message} (in Pulumi.{pulumi.get_stack()}.yaml)"
    )


def declare_integration(index: int, entry: dict[str, Any]) -> tuple[str, Integration]:
    name = entry.get("name")
    if not name:
        raise entry_error("integrations", index, "every integration needs a `name`")
    unknown = set(entry) - INTEGRATION_KEYS - {"name", "token_config"}
    if unknown:
        raise entry_error(
            "integrations",
            index,
            f"unknown key(s) {sorted(unknown)}; "
            f"known: {sorted(INTEGRATION_KEYS | {'name', 'token_config'})}",
        )
    token_key = entry.get("token_config") or f"{name}-token"
    if config.get_secret(token_key) is None:
        raise entry_error(
            "integrations",
            index,
            f"no token for '{name}': "
            f"run `pulumi config set --secret circlecost:{token_key} <token>`",
        )
    arguments = {key: value for key, value in entry.items() if key in INTEGRATION_KEYS}
    return name, Integration(name, token=config.require_secret(token_key), **arguments)


def declare_workspace(
    index: int, entry: dict[str, Any], integrations: dict[str, Integration]
) -> Workspace:
    name = entry.get("name")
    if not name:
        raise entry_error("workspaces", index, "every workspace needs a `name`")
    workspace = Workspace(f"workspace-{name}", name=name, description=entry.get("description", ""))
    for integration_name in entry.get("integrations", []):
        if integration_name not in integrations:
            raise entry_error(
                "workspaces",
                index,
                f"'{integration_name}' is not one of the integrations {sorted(integrations)}",
            )
        WorkspaceBinding(
            f"{name}-{integration_name}",
            workspace_id=workspace.id,
            integration_id=integrations[integration_name].id,
        )
    return workspace


integrations = dict(
    declare_integration(index, dict(entry))
    for index, entry in enumerate(config.get_object("integrations") or [])
)
workspaces = [
    declare_workspace(index, dict(entry), integrations)
    for index, entry in enumerate(config.get_object("workspaces") or [])
]

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
