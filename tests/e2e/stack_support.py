"""The reference stack (__main__.py) in a temp folder, driven through the real Pulumi CLI."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi import automation as auto

from circlecost.engine import LAKE_PREFIX, SharedStore
from circlecost.gitops import preview_then_up
from tests.pulumi_support import (
    REPO,
    PulumiProject,
    export_state_without_secrets,
    pulumi_env,
    write_pulumi_yaml,
)

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
    shared_store: SharedStore | None = None
    previews: list[auto.PreviewResult] = field(default_factory=list)

    def up(self) -> UpOutcome:
        """As CI runs it: `pulumi preview` with the policy pack (it must pass; its result is
        kept in `previews`), then `pulumi up` with the pack, never skipping its preview."""
        outputs = preview_then_up(
            self.stack, Path(POLICY_PACK), self.log.append, self.previews.append
        )
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
    shared_store: SharedStore | None = None,
    env: dict[str, str] | None = None,
) -> ReferenceStack:
    """The reference program with its own store (a file in tmp_path, or `shared_store`), its
    own PULUMI_HOME and file backend; `env` adds variables (S3 keys, say) for the CLI's runs."""
    work_dir = tmp_path / "stack"
    work_dir.mkdir(parents=True)
    shutil.copy2(REPO / "__main__.py", work_dir / "__main__.py")
    write_pulumi_yaml(work_dir, "circlecost")
    store_location = store or tmp_path / "store" / "costs.duckdb"
    store_config = (
        {"circlecost:store": LAKE_PREFIX + shared_store.catalog}
        | ({"circlecost:storeDataPath": shared_store.data_path} if shared_store.data_path else {})
        if shared_store is not None
        else {"circlecost:store": str(store_location)}
    )
    config = {
        "circlecost:actor": actor,
        **store_config,
        "circlecost:circleciUrl": base_url,
        "circlecost:allowLoopbackDownloads": "true",
        "circlecost:createTimeoutSeconds": "60",
        "circlecost:integrations": integrations or [],
        "circlecost:workspaces": workspaces or [],
    }
    # JSON is YAML: the CLI reads this file as the stack's configuration.
    (work_dir / "Pulumi.test.yaml").write_text(json.dumps({"config": config}, indent=2))
    project = PulumiProject(
        work_dir=work_dir, env={**pulumi_env(tmp_path), **FAST_POLLING, **(env or {})}
    )
    stack = project.stack("test")
    for name, token in (tokens or {}).items():
        stack.set_config(f"circlecost:{name}-token", auto.ConfigValue(token, secret=True))
    return ReferenceStack(project, store_location, stack, shared_store=shared_store)


def fresh_runner(stack: ReferenceStack, tmp_path: Path) -> ReferenceStack:
    """What a new CI runner has of `stack`: a clone of its project folder (the committed
    Pulumi.yaml, program and stack config with its secrets) and the same Pulumi backend and
    store; nothing else (its own PULUMI_HOME, no store file, no caches)."""
    work_dir = tmp_path / "stack"
    shutil.copytree(stack.project.work_dir, work_dir)
    own = pulumi_env(tmp_path)
    env = {
        **stack.project.env,
        "PULUMI_HOME": own["PULUMI_HOME"],
    }
    project = PulumiProject(work_dir=work_dir, env=env)
    return ReferenceStack(
        project, tmp_path / "no-store", project.stack("test"), shared_store=stack.shared_store
    )


def circlecost_resources(stack: ReferenceStack) -> list[str]:
    """The names of the circlecost resources in the stack's Pulumi state."""
    state = export_state_without_secrets(stack.project)
    return sorted(
        resource["urn"].rsplit("::", 1)[1]
        for resource in state["deployment"].get("resources", [])
        if resource["type"].startswith("pulumi-python:dynamic/circlecost:")
    )
