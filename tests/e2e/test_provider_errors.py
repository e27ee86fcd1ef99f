"""What a person sees when the provider refuses a change: one sentence and its hint, no Python
traceback (unless CIRCLECOST_DEBUG asks for it)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pulumi import automation as auto

from circlecost_emulator import Emulator
from tests.e2e.stack_support import reference_stack
from tests.e2e.test_resources import bot_token, entry

pytestmark = pytest.mark.emulator(seed=21)


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "CIRCLECOST_DEBUG"])
def test_a_token_of_another_organization_fails_the_create_in_one_line(
    emulator: Emulator, tmp_path: Path, debug: bool
) -> None:
    globex = emulator.organizations[1]["id"]
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 1)],
        tokens={"globex": bot_token(emulator, 0)},  # acme's token for globex
    )
    if debug:
        stack.project.env["CIRCLECOST_DEBUG"] = "1"
        stack.stack.workspace.env_vars = {**stack.stack.workspace.env_vars, **stack.project.env}

    with pytest.raises(auto.CommandError) as failure:
        stack.up()

    text = str(failure.value)
    assert f"the token's user is not an admin of CircleCI organization {globex}" in text
    assert "use a token of an organization admin" in text  # the hint
    assert ("Traceback (most recent call last)" in text) is debug
    assert bot_token(emulator, 0) not in text
