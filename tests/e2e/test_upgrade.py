"""A stack created by the last released circlecost still refreshes, updates and destroys after
an upgrade to this code. That release imported as `provider`: its state pickles
`provider.resources`, which this version answers with `circlecost.resources`
(circlecost.legacy_names)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from circlecost.gitops import preview_then_up
from circlecost_emulator import Emulator
from tests.e2e.stack_support import ReferenceStack, circlecost_resources, reference_stack
from tests.e2e.test_resources import bot_token, entry
from tests.pulumi_support import REPO, pulumi_root

pytestmark = pytest.mark.emulator(seed=41)

# The last commit released before circlecost was imported as `circlecost`.
LAST_RELEASE = "d0117fad8b90e1433f7113651e52ff7690dbf6a3"


def checkout(commit: str, target: Path) -> Path:
    """The files of `commit` (from this repository's history) in `target`."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit],
            check=True,
            capture_output=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError) as error:
        pytest.skip(f"commit {commit[:12]} is not in this clone (a shallow clone?): {error}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(target, filter="data")
    return target


def pickled_modules(stack: ReferenceStack) -> dict[str, str]:
    """The module that each circlecost resource's pickled provider names, by resource name.
    (The pickle is a secret, as the integration's inputs hold its token: only a decrypted
    export shows it.)"""
    result = subprocess.run(
        [str(pulumi_root() / "bin" / "pulumi"), "stack", "export", "--show-secrets"],
        cwd=stack.project.work_dir,
        env={**os.environ, **stack.stack.workspace.env_vars},
        capture_output=True,
        text=True,
        check=True,
    )
    found = {}
    for resource in json.loads(result.stdout)["deployment"]["resources"]:
        if not resource["type"].startswith("pulumi-python:dynamic/circlecost:"):
            continue
        value = resource["outputs"]["__provider"]
        if isinstance(value, dict):  # a secret, decrypted: its JSON-encoded plaintext
            value = json.loads(value["plaintext"])
        pickled = base64.b64decode(value)
        for module in ("provider.resources", "circlecost.resources"):
            if module.encode() in pickled:
                found[resource["urn"].rsplit("::", 1)[1]] = module
    return found


def old_policy_pack(old: Path) -> Path:
    """The old release's pack, run by this virtualenv (its own names `../.venv`)."""
    pack = old / "policies"
    text = (pack / "PulumiPolicy.yaml").read_text()
    (pack / "PulumiPolicy.yaml").write_text(
        text.replace("virtualenv: ../.venv", f"virtualenv: {sys.prefix}")
    )
    return pack


def test_a_stack_of_the_last_release_refreshes_updates_and_destroys_after_the_upgrade(
    emulator: Emulator, tmp_path: Path
) -> None:
    old = checkout(LAST_RELEASE, tmp_path / "release")
    stack = reference_stack(
        tmp_path,
        emulator.base_url,
        integrations=[entry(emulator, 0)],
        workspaces=[{"name": "platform", "integrations": ["acme"]}],
        tokens={"acme": bot_token(emulator, 0)},
        # The old release's program, provider and policy pack come first on the path.
        env={"PYTHONPATH": str(old)},
    )
    shutil.copy2(old / "__main__.py", stack.project.work_dir / "__main__.py")
    preview_then_up(stack.stack, old_policy_pack(old), stack.log.append)
    assert circlecost_resources(stack) == ["acme", "platform-acme", "workspace-platform"]
    assert set(pickled_modules(stack).values()) == {"provider.resources"}

    # The upgrade: this code's program, nothing of the old release on the path.
    env_vars = stack.stack.workspace.env_vars
    assert isinstance(env_vars, dict)
    del env_vars["PYTHONPATH"]
    shutil.copy2(REPO / "__main__.py", stack.project.work_dir / "__main__.py")

    stack.refresh()  # unpickles the old release's providers
    assert circlecost_resources(stack) == ["acme", "platform-acme", "workspace-platform"]

    changed = [entry(emulator, 0, description="after the upgrade")]
    stack.set_integrations(changed)
    outcome = stack.up()
    assert outcome.summary is not None
    assert outcome.summary.result == "succeeded"
    assert outcome.outputs["integrations"].value["acme"]["status"] == "Stable"
    # The updated integration now names this version; the unchanged workspace and binding keep
    # the old name until they change, and destroy unpickles both.
    assert pickled_modules(stack) == {
        "acme": "circlecost.resources",
        "platform-acme": "provider.resources",
        "workspace-platform": "provider.resources",
    }

    stack.destroy()
    assert circlecost_resources(stack) == []
