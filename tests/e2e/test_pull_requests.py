"""A platform repo's pull requests, one after another, as CI runs them: `pulumi preview` with
the policy pack on the pull request, then `pulumi up` on merge. Every preview passes, including
those whose inputs are not known until apply (a new workspace's id, a new integration's id)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pulumi import automation as auto

from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.e2e.stack_support import ReferenceStack, reference_stack
from tests.e2e.test_resources import bot_token, entry, rows_in_store, rows_served

pytestmark = pytest.mark.emulator(seed=29)


def pull_request(
    stack: ReferenceStack,
    *,
    integrations: list[dict[str, Any]],
    workspaces: list[dict[str, Any]],
) -> dict[str, int]:
    """Changes the stack's config, previews it with the policy pack (it must pass) and merges
    it, as CI does; returns the preview's planned operations."""
    stack.set_integrations(integrations)
    stack.set_workspaces(workspaces)
    stack.up()
    preview = stack.previews[-1]
    return {str(op): count for op, count in preview.change_summary.items() if op != "same"}


def bindings(store: Path) -> set[tuple[str, str]]:
    s = Store(store)
    names = {record.id: record.organization_name for record in s.list_integrations()}
    with s.reader() as con:
        rows = con.execute(
            "SELECT w.name, b.integration_id FROM bindings b "
            "JOIN workspaces w ON w.id = b.workspace_id"
        ).fetchall()
    return {(workspace, str(names[integration])) for workspace, integration in rows}


def test_a_sequence_of_pull_requests_previews_and_applies_every_change(
    emulator: Emulator, tmp_path: Path
) -> None:
    acme, globex = entry(emulator, 0), entry(emulator, 1)
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        tokens={"acme": bot_token(emulator, 0), "globex": bot_token(emulator, 1)},
    )

    # 1. a new integration
    planned = pull_request(stack, integrations=[acme], workspaces=[])
    assert planned == {"create": 2}  # the stack and the integration
    assert rows_in_store(stack.store, "acme") == rows_served(emulator, stack.store, "acme")

    # 2. a new workspace bound to the existing integration and to a new one in the same change:
    # the binding's workspace id and globex's id are unknown in the preview
    platform = {"name": "platform", "description": "Platform", "integrations": ["acme", "globex"]}
    planned = pull_request(stack, integrations=[acme, globex], workspaces=[platform])
    assert planned == {"create": 4}  # globex, the workspace, two bindings
    assert bindings(stack.store) == {("platform", "acme"), ("platform", "globex")}

    # 3. a price change re-prices acme's costs at once
    before = Store(stack.store).integration_summary(integration_id(stack, "acme"))
    planned = pull_request(
        stack,
        integrations=[{**acme, "price_per_credit": "0.0003"}, globex],
        workspaces=[platform],
    )
    assert planned == {"update": 1}
    after = Store(stack.store).integration_summary(integration_id(stack, "acme"))
    assert after["total_cost_usd"] * 2 == before["total_cost_usd"]  # 0.0003 is half of 0.0006

    # 4. the workspace renamed: a new workspace with the same bindings, the old one gone
    renamed = {**platform, "name": "platform-eng"}
    planned = pull_request(
        stack,
        integrations=[{**acme, "price_per_credit": "0.0003"}, globex],
        workspaces=[renamed],
    )
    assert planned == {"create": 3, "delete": 3}
    assert bindings(stack.store) == {("platform-eng", "acme"), ("platform-eng", "globex")}

    # 5. the workspace and then globex removed: its costs are purged, acme's stay
    planned = pull_request(
        stack, integrations=[{**acme, "price_per_credit": "0.0003"}], workspaces=[]
    )
    assert planned == {"delete": 4}
    assert bindings(stack.store) == set()
    assert rows_in_store(stack.store, "globex") == (0, Decimal(0))
    assert rows_in_store(stack.store, "acme") == rows_served(emulator, stack.store, "acme")
    assert [r.organization_name for r in Store(stack.store).list_integrations()] == ["acme"]


def integration_id(stack: ReferenceStack, name: str) -> str:
    outputs: auto.OutputMap = stack.stack.outputs()
    return str(outputs["integrations"].value[name]["id"])
