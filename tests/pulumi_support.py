"""Runs the real Pulumi CLI, isolated and offline, for end-to-end tests.

The CLI is the one the bootstrap chose (its root is in .venv/pulumi-root). Every test gets its
own PULUMI_HOME and file backend, so tests never share state and never reach a network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pulumi import automation as auto

from circlecost import toolchain
from tests.clock import child_env

REPO = Path(__file__).resolve().parent.parent
PASSPHRASE = "circlecost-tests"


def pulumi_root() -> Path:
    root = toolchain.pulumi_root()
    if root is None:
        raise RuntimeError(
            "no Pulumi CLI recorded in the virtualenv: run `make test` (it bootstraps one)"
        )
    return root


def pulumi_env(base: Path) -> dict[str, str]:
    """Environment for one isolated, offline Pulumi run rooted at `base`."""
    (base / "pulumi-home").mkdir(parents=True, exist_ok=True)
    (base / "pulumi-state").mkdir(parents=True, exist_ok=True)
    venv_bin = str(Path(sys.executable).parent)
    return {
        "PULUMI_HOME": str(base / "pulumi-home"),
        "PULUMI_BACKEND_URL": f"file://{base / 'pulumi-state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_PYTHON_CMD": sys.executable,
        "CIRCLECOST_PYTHON": sys.executable,
        **child_env(),  # the provider and the policy pack run on the suite's clock
        "PATH": os.pathsep.join([str(pulumi_root() / "bin"), venv_bin, os.environ.get("PATH", "")]),
    }


@dataclass
class PulumiProject:
    """A Pulumi project folder and the isolated environment to run it in."""

    work_dir: Path
    env: dict[str, str]

    def stack(self, name: str = "test") -> auto.Stack:
        command = auto.PulumiCommand(root=str(pulumi_root()))
        options = auto.LocalWorkspaceOptions(
            work_dir=str(self.work_dir),
            pulumi_command=command,
            env_vars=self.env,
            pulumi_home=self.env["PULUMI_HOME"],
        )
        return auto.create_or_select_stack(name, work_dir=str(self.work_dir), opts=options)


def write_pulumi_yaml(folder: Path, name: str) -> None:
    venv = Path(sys.executable).parent.parent
    (folder / "Pulumi.yaml").write_text(
        f"name: {name}\nruntime:\n  name: python\n  options:\n    virtualenv: {venv}\n"
    )


def export_state_without_secrets(project: PulumiProject, stack: str = "test") -> dict:  # type: ignore[type-arg]
    """`pulumi stack export` as a person would run it: secrets stay encrypted."""
    result = subprocess.run(
        [str(pulumi_root() / "bin" / "pulumi"), "stack", "export", "--stack", stack],
        cwd=project.work_dir,
        env={**os.environ, **project.env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def state_files_text(project: PulumiProject) -> str:
    """Every byte the file backend holds, as text, for secret scans."""
    root = Path(project.env["PULUMI_BACKEND_URL"].removeprefix("file://"))
    return "\n".join(path.read_text(errors="replace") for path in root.rglob("*") if path.is_file())
