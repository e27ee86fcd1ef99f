"""`python -m provider.gitops preview|up --stack NAME`: the two steps of a GitOps pipeline.

A pull request runs `preview` (the policy pack gates it); a merge runs `up`. Both use the Pulumi
CLI the bootstrap chose (recorded in .venv/pulumi-root) and the project's policy pack.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def pulumi_binary() -> str:
    marker = REPO / ".venv" / "pulumi-root"
    if marker.exists():
        return str(Path(marker.read_text().strip()) / "bin" / "pulumi")
    return "pulumi"


def command(step: str, stack: str, policy_pack: Path) -> list[str]:
    common = ["--stack", stack, "--policy-pack", str(policy_pack), "--non-interactive"]
    if step == "preview":
        return [pulumi_binary(), "preview", *common]
    return [pulumi_binary(), "up", "--yes", "--skip-preview", *common]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m provider.gitops", description=__doc__)
    parser.add_argument("step", choices=["preview", "up"])
    parser.add_argument("--stack", required=True, help="the stack to preview or update")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="the Pulumi project folder")
    parser.add_argument("--policy-pack", type=Path, default=REPO / "policies")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    bin_dir = str(Path(pulumi_binary()).parent)
    env["PATH"] = os.pathsep.join([bin_dir, str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("PULUMI_PYTHON_CMD", sys.executable)
    env.setdefault("CIRCLECOST_PYTHON", sys.executable)
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    return subprocess.call(command(args.step, args.stack, args.policy_pack), cwd=args.cwd, env=env)


if __name__ == "__main__":
    sys.exit(main())
