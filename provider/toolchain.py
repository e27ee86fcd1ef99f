"""Where circlecost finds the Pulumi CLI and its own policy pack, installed or in a checkout.

`make bootstrap` records the chosen CLI's root folder (the parent of its bin/) in
`<virtualenv>/pulumi-root`; any Python of that virtualenv finds it through `sys.prefix`, so the
demo, `circlecost.gitops` and the tests need not know where the repository is. Without that
file, the `pulumi` on PATH is used.

The policy pack ships in the wheel as `circlecost.policies`. Pulumi runs a pack from a folder
whose PulumiPolicy.yaml names the Python to run it with; `policy_pack()` writes such a folder
(outside any work tree) that runs the installed pack with this very interpreter.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

MARKER = "pulumi-root"
PACK_MAIN = '"""circlecost\'s policy pack, as installed: see circlecost.policies."""\n\n' + (
    "import runpy\n\n"
    'runpy.run_module("circlecost.policies.__main__", run_name="__main__", alter_sys=True)\n'
)


def pulumi_root() -> Path | None:
    """The root folder of the Pulumi CLI the bootstrap chose for this virtualenv, if any."""
    marker = Path(sys.prefix) / MARKER
    if not marker.exists():
        return None
    return Path(marker.read_text().strip())


def require_pulumi_root() -> Path:
    root = pulumi_root()
    if root is None:
        raise SystemExit(
            f"error: no Pulumi CLI recorded in {Path(sys.prefix) / MARKER}: run `make bootstrap`"
        )
    return root


def pulumi_binary() -> str:
    """The recorded CLI, else `pulumi` from PATH."""
    root = pulumi_root()
    return str(root / "bin" / "pulumi") if root else "pulumi"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(os.environ.get("CIRCLECOST_CACHE") or Path(base) / "circlecost")


def policy_pack_yaml() -> str:
    """The installed pack's PulumiPolicy.yaml, run by this interpreter's virtualenv."""
    from circlecost import policies

    source = (Path(policies.__file__).parent / "PulumiPolicy.yaml").read_text()
    lines = [line for line in source.splitlines() if "virtualenv:" not in line]
    if sys.prefix != sys.base_prefix:
        lines = [
            line + (f"\n    virtualenv: {sys.prefix}" if line.strip() == "options:" else "")
            for line in lines
        ]
    else:  # no virtualenv: the language host runs PULUMI_PYTHON_CMD or python3 from PATH
        lines = [line for line in lines if line.strip() != "options:"]
    return "\n".join(lines) + "\n"


def policy_pack() -> Path:
    """A folder that runs circlecost's installed policy pack: `--policy-pack` takes it."""
    yaml_text = policy_pack_yaml()
    key = hashlib.sha256(f"{sys.prefix}\n{yaml_text}\n{PACK_MAIN}".encode()).hexdigest()[:12]
    folder = cache_dir() / "policy-pack" / key
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (("PulumiPolicy.yaml", yaml_text), ("__main__.py", PACK_MAIN)):
        target = folder / name
        if not target.exists() or target.read_text() != text:
            scratch = folder / f".{name}.{os.getpid()}"
            scratch.write_text(text)
            scratch.replace(target)
    return folder
