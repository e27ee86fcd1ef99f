"""Proof that the real Pulumi CLI runs here: dynamic resources, secrets, refresh, policies."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from pulumi import automation as auto

from circlecost.gitops import preview_then_up
from tests.pulumi_support import (
    PulumiProject,
    export_state_without_secrets,
    pulumi_env,
    state_files_text,
    write_pulumi_yaml,
)

HERE = Path(__file__).resolve().parent
SECRET = "smoke-secret-7f3c9a1e2b"
# How Pulumi's state marks a secret value.
SECRET_SIG = "4dabf18193072939515e22adb298388d"
SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270"


@pytest.fixture
def project(tmp_path: Path) -> PulumiProject:
    work_dir = tmp_path / "program"
    shutil.copytree(HERE / "smoke_program", work_dir)
    write_pulumi_yaml(work_dir, "smoke")
    policy_dir = tmp_path / "policy"
    shutil.copytree(HERE / "smoke_policy", policy_dir)
    venv = Path(sys.executable).parent.parent
    (policy_dir / "PulumiPolicy.yaml").write_text(
        f"runtime:\n  name: python\n  options:\n    virtualenv: {venv}\n"
    )
    env = pulumi_env(tmp_path)
    env["SMOKE_JOURNAL"] = str(tmp_path / "journal.txt")
    return PulumiProject(work_dir=work_dir, env=env)


def journal(project: PulumiProject) -> list[str]:
    path = Path(project.env["SMOKE_JOURNAL"])
    return path.read_text().split() if path.exists() else []


def greeting_state(exported: dict) -> dict:  # type: ignore[type-arg]
    return next(
        r
        for r in exported["deployment"]["resources"]
        if r["type"] == "pulumi-python:dynamic/smoke:Greeting"
    )


def test_dynamic_resource_lifecycle_through_the_real_cli(project: PulumiProject) -> None:
    stack = project.stack()
    stack.set_config("message", auto.ConfigValue("world"))
    stack.set_config("token", auto.ConfigValue(SECRET, secret=True))

    first = preview_then_up(stack, None, print)
    assert first["text"].value == "hello, world"
    assert journal(project) == ["create"]

    exported = export_state_without_secrets(project)
    assert SECRET not in json.dumps(exported), "the secret must be encrypted in the state"
    assert SECRET not in state_files_text(project)
    token_output = greeting_state(exported)["outputs"]["token"]
    assert token_output[SECRET_SIG] == SECRET_SIG_VALUE, "the token output must stay secret"
    assert token_output["ciphertext"]

    stack.set_config("message", auto.ConfigValue("again"))
    second = preview_then_up(stack, None, print)
    assert second["text"].value == "hello, again"
    assert journal(project) == ["create", "update"]

    stack.refresh(on_output=print)
    assert journal(project)[-1] == "read"
    refreshed = greeting_state(export_state_without_secrets(project))
    assert refreshed["outputs"]["reads"] == 1, "read's recomputed output must land in the state"

    stack.destroy(on_output=print)
    assert journal(project)[-1] == "delete"


def test_mandatory_policy_violation_fails_the_preview(
    project: PulumiProject, tmp_path: Path
) -> None:
    stack = project.stack()
    stack.set_config("token", auto.ConfigValue(SECRET, secret=True))
    policy = str(tmp_path / "policy")

    stack.set_config("message", auto.ConfigValue("world"))
    passing = stack.preview(policy_packs=[policy], on_output=print)
    assert passing.change_summary.get(auto.OpType.CREATE) == 2  # the stack and the Greeting

    stack.set_config("message", auto.ConfigValue("forbidden"))
    with pytest.raises(auto.CommandError) as failure:
        stack.preview(policy_packs=[policy], on_output=print)
    assert "smoke-no-forbidden-message" in str(failure.value)
    assert SECRET not in str(failure.value)
