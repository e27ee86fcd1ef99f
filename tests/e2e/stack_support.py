"""The reference stack (__main__.py) in a temp folder, driven through the real Pulumi CLI."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from provider.gitops import preview_then_up
from tests.pulumi_support import REPO, PulumiProject, pulumi_env, write_pulumi_yaml

FAST_POLLING = {
    "CIRCLECOST_FIRST_POLL_SECONDS": "0",
    "CIRCLECOST_POLL_SECONDS": "0.2",
    "CIRCLECOST_RETRY_SECONDS": "0.2",
}
POLICY_PACK = str(REPO / "policies")


@dataclass(frozen=True)
class UpOutcome:
    """What tests read of an update: the stack's outputs and the update's summary."""

    outputs: auto.OutputMap
    summary: auto.UpdateSummary | None


@dataclass
class ReferenceStack:
    """One stack of the reference program with its own store, state and log of CLI output."""

    project: PulumiProject
    store: Path
    stack: auto.Stack
    log: list[str] = field(default_factory=list)

    def up(self) -> UpOutcome:
        """As CI runs it: `pulumi preview` with the policy pack (it must pass), then
        `pulumi up` with the pack, never skipping its preview."""
        outputs = preview_then_up(self.stack, Path(POLICY_PACK), self.log.append)
        return UpOutcome(outputs, self.stack.info())

    def preview(self, **kwargs: Any) -> auto.PreviewResult:
        return self.stack.preview(on_output=self.log.append, color="never", **kwargs)

    def refresh(self) -> auto.RefreshResult:
        return self.stack.refresh(on_output=self.log.append, color="never")

    def destroy(self) -> auto.DestroyResult:
        return self.stack.destroy(on_output=self.log.append, color="never")

    def set(self, key: str, value: str, secret: bool = False) -> None:
        self.stack.set_config(
            key, auto.ConfigValue(value, secret=secret), path="[" in key or "." in key
        )

    def set_integrations(self, entries: list[dict[str, Any]]) -> None:
        self.stack.set_config(
            "circlecost:integrations", auto.ConfigValue(json.dumps(entries)), path=False
        )

    def set_workspaces(self, entries: list[dict[str, Any]]) -> None:
        self.stack.set_config(
            "circlecost:workspaces", auto.ConfigValue(json.dumps(entries)), path=False
        )

    def text(self) -> str:
        return "".join(self.log)


def reference_stack(
    tmp_path: Path,
    base_url: str,
    *,
    actor: str = "ana",
    integrations: list[dict[str, Any]] | None = None,
    workspaces: list[dict[str, Any]] | None = None,
    tokens: dict[str, str] | None = None,
    store: Path | None = None,
) -> ReferenceStack:
    work_dir = tmp_path / "stack"
    work_dir.mkdir(parents=True)
    shutil.copy2(REPO / "__main__.py", work_dir / "__main__.py")
    write_pulumi_yaml(work_dir, "circlecost")
    store_path = store or tmp_path / "store" / "costs.duckdb"
    config = {
        "circlecost:actor": actor,
        "circlecost:store": str(store_path),
        "circlecost:circleciUrl": base_url,
        "circlecost:allowLoopbackDownloads": "true",
        "circlecost:createTimeoutSeconds": "60",
        "circlecost:integrations": integrations or [],
        "circlecost:workspaces": workspaces or [],
    }
    # JSON is YAML: the CLI reads this file as the stack's configuration.
    (work_dir / "Pulumi.test.yaml").write_text(json.dumps({"config": config}, indent=2))
    env = {**pulumi_env(tmp_path), **FAST_POLLING}
    project = PulumiProject(work_dir=work_dir, env=env)
    stack = project.stack("test")
    for name, token in (tokens or {}).items():
        stack.set_config(f"circlecost:{name}-token", auto.ConfigValue(token, secret=True))
    return ReferenceStack(project, store_path, stack)
