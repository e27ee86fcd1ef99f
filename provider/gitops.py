"""`python -m circlecost.gitops preview|up --stack NAME`: the two steps of a GitOps pipeline.

A pull request runs `preview` (the policy pack gates it); a merge runs `up`. Both use the Pulumi
CLI the bootstrap chose (see circlecost.toolchain) and circlecost's policy pack, the one installed
with circlecost unless --policy-pack names another folder.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from circlecost.toolchain import policy_pack, pulumi_binary


def command(step: str, stack: str, policy_pack: Path) -> list[str]:
    common = ["--stack", stack, "--policy-pack", str(policy_pack), "--non-interactive"]
    if step == "preview":
        return [pulumi_binary(), "preview", *common]
    # `up` runs its own preview, with the pack, before it changes anything.
    return [pulumi_binary(), "up", "--yes", *common]


def clear_dead_locks(backend_url: str, project: str, stack: str) -> list[str]:
    """Removes the update locks of a local file backend that a killed `pulumi` of this machine
    left behind, and says which; a re-run CI job then needs no `pulumi cancel`.

    A lock whose process still runs, or that another machine holds, is left alone: only a person
    can tell whether that update is still going (`pulumi cancel` removes it).
    """
    if not backend_url.startswith("file://"):
        return []
    root = Path(backend_url.removeprefix("file://").split("?", 1)[0]).expanduser()
    cleared = []
    for lock in sorted(root.glob(f".pulumi/locks/*/{project}/{stack}/*.json")):
        try:
            holder = json.loads(lock.read_text())
            pid, host = int(holder["pid"]), str(holder["hostname"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not a lock we understand: leave it to `pulumi cancel`
        if host == socket.gethostname() and not process_exists(pid):
            lock.unlink(missing_ok=True)
            cleared.append(f"cleared the lock of a killed `pulumi` (pid {pid}) on stack {stack}")
    return cleared


def project_name(pulumi_yaml: Path) -> str:
    try:
        settings = yaml.safe_load(pulumi_yaml.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ""
    return str(settings.get("name", "")) if isinstance(settings, dict) else ""


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def preview_then_up(
    stack: Any,
    policy_pack: Path | None,
    on_output: Callable[[str], None] | None,
    on_preview: Callable[[Any], None] | None = None,
) -> Any:
    """The pipeline for an Automation API stack: a preview gated by the policy pack, then
    `pulumi up` with the pack. (The Automation API's own `up` always skips its preview, so the
    update runs through the stack's CLI instead.) Returns the stack's outputs; `on_preview`
    gets the preview's result (what a pull request's reviewer sees)."""
    packs = [str(policy_pack)] if policy_pack else []
    workspace = stack.workspace
    backend = workspace.env_vars.get("PULUMI_BACKEND_URL") or os.environ.get(
        "PULUMI_BACKEND_URL", ""
    )
    for line in clear_dead_locks(backend, workspace.project_settings().name, stack.name):
        if on_output is not None:
            on_output(f"circlecost: {line}\n")
    previewed = stack.preview(policy_packs=packs, on_output=on_output, color="never")
    if on_preview is not None:
        on_preview(previewed)
    extra = {"PULUMI_HOME": workspace.pulumi_home} if workspace.pulumi_home else {}
    pack_args = [arg for pack in packs for arg in ("--policy-pack", pack)]
    workspace.pulumi_command.run(
        ["up", "--yes", "--stack", stack.name, *pack_args, "--color=never"],
        workspace.work_dir,
        {**extra, **workspace.env_vars},
        on_output=on_output,
    )
    return stack.outputs()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m circlecost.gitops", description=__doc__)
    parser.add_argument("step", choices=["preview", "up"])
    parser.add_argument("--stack", required=True, help="the stack to preview or update")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the Pulumi project folder")
    parser.add_argument(
        "--policy-pack",
        type=Path,
        default=None,
        help="a policy pack folder (default: the pack installed with circlecost)",
    )
    args = parser.parse_args(argv)
    env = dict(os.environ)
    bin_dir = str(Path(pulumi_binary()).parent)
    env["PATH"] = os.pathsep.join([bin_dir, str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PULUMI_PYTHON_CMD", sys.executable)
    env.setdefault("CIRCLECOST_PYTHON", sys.executable)
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    if args.step == "up":
        project = project_name(args.cwd / "Pulumi.yaml")
        for line in clear_dead_locks(env.get("PULUMI_BACKEND_URL", ""), project, args.stack):
            sys.stderr.write(f"circlecost: {line}\n")
    # The CLI runs in --cwd: a relative pack path means the folder the command was run from.
    pack = args.policy_pack.resolve() if args.policy_pack else policy_pack()
    if not (pack / "PulumiPolicy.yaml").exists():
        sys.stderr.write(
            f"error: --policy-pack {args.policy_pack}: no PulumiPolicy.yaml there\n"
            "hint: name a folder with a PulumiPolicy.yaml, or leave --policy-pack out to use "
            "the pack installed with circlecost\n"
        )
        return 2
    return subprocess.call(command(args.step, args.stack, pack), cwd=args.cwd, env=env)


if __name__ == "__main__":
    sys.exit(main())
