"""A run that looks into an empty or different store never makes Pulumi forget the stack's
resources: `pulumi refresh` and `pulumi preview` fail naming both stores, and the state stays."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi import automation as auto

from circlecost.store import Store
from circlecost_emulator import Emulator
from tests.e2e.stack_support import POLICY_PACK, circlecost_resources, reference_stack
from tests.e2e.test_resources import bot_token, entry

pytestmark = pytest.mark.emulator(seed=37)


def test_refresh_and_preview_against_an_empty_or_other_store_fail_and_keep_the_state(
    emulator: Emulator, tmp_path: Path
) -> None:
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0)],
        workspaces=[{"name": "platform", "integrations": ["acme"]}],
        tokens={"acme": bot_token(emulator, 0)},
    )
    stack.up()
    own = Store(stack.store).identity()
    kept = circlecost_resources(stack)
    assert kept == ["acme", "platform-acme", "workspace-platform"]

    # A fresh CI runner: the store the stack was configured with is not there. (Refresh reads
    # the provider configuration recorded at the last update, so the path is the same.)
    kept_aside = stack.store.with_name("kept-aside.duckdb")
    stack.store.rename(kept_aside)
    with pytest.raises(auto.CommandError) as failure:
        stack.refresh()
    text = str(failure.value)
    assert f"lives in store {own}; this run uses {stack.store}, which does not exist" in text
    assert "circlecost:store" in text  # the hint
    assert not stack.store.exists()  # nothing was created either
    assert circlecost_resources(stack) == kept

    # Another store at that path (another team's, or one made anew).
    other = Store(stack.store)
    other.migrate()
    for step in (stack.refresh, lambda: stack.preview(policy_packs=[POLICY_PACK])):
        with pytest.raises(auto.CommandError) as failure:
            step()
        assert f"lives in store {own}; this run uses store {other.identity()}" in str(failure.value)
    assert circlecost_resources(stack) == kept
    assert other.list_integrations() == []

    # A preview whose config names another store.
    stack.store.unlink()
    stack.set("circlecost:store", str(tmp_path / "typo" / "costs.duckdb"))
    with pytest.raises(auto.CommandError) as failure:
        stack.preview(policy_packs=[POLICY_PACK])
    assert "which does not exist" in str(failure.value)

    # Back on its own store, everything is as it was.
    kept_aside.rename(stack.store)
    stack.set("circlecost:store", str(stack.store))
    stack.refresh()
    assert circlecost_resources(stack) == kept
    assert set(stack.preview(policy_packs=[POLICY_PACK]).change_summary) <= {"same"}
