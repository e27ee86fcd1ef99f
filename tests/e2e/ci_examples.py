"""The README's CI examples as data, and as bash scripts that run their steps on this machine.

`readme_examples()` parses the fenced YAML blocks of README.md's "GitOps and policies" section.
`render_github()` and `render_circleci()` turn one job into a bash script: every `run` step runs as
the CI would run it (GitHub: `bash -e`, CircleCI: `bash -eo pipefail` with `BASH_ENV`), and every
CI-only step is replaced by a local equivalent named in `Rendered.substitutions`:

- checkout (`actions/checkout`, CircleCI's `checkout`): a `git clone` of a local repository;
- `actions/setup-python`: the machine's Python 3 in /usr/bin (pip keeps its own cache);
- `pulumi/actions`, the get.pulumi.com install script: a folder on PATH with the Pulumi CLI and
  its Python language host;
- `restore_cache` / `save_cache`: nothing (pip uses the machine's cache and configuration);
- `${{ secrets.* }}`, CircleCI project variables: values the test gives (a file backend, a
  passphrase, and the shared store's catalog, data path and S3 settings on the test's servers).

A step the renderer does not know fails the rendering, so a new CI-only step in the README must
get a local equivalent here before the test passes again.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.pulumi_support import REPO

FENCED_YAML = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
EVENT_CONDITION = re.compile(r"^github\.event_name\s*==\s*'([a-z_]+)'$")
PULUMI_INSTALL_SCRIPT = "get.pulumi.com"


def pinned_pulumi_version() -> str:
    """The CLI version the bootstrap pins (PULUMI_VERSION in .ci/bootstrap.sh)."""
    text = (REPO / ".ci" / "bootstrap.sh").read_text()
    match = re.search(r"^PULUMI_VERSION=([0-9.]+)", text, re.MULTILINE)
    assert match, "no PULUMI_VERSION= line in .ci/bootstrap.sh"
    return match.group(1)


def readme_examples(readme: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """{"github": (text, document), "circleci": (text, document)} from the README's YAML blocks."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for text in FENCED_YAML.findall(readme):
        document = yaml.safe_load(text)
        if not isinstance(document, dict) or "jobs" not in document:
            continue
        jobs = document["jobs"]
        kind = "github" if any("runs-on" in job for job in jobs.values()) else "circleci"
        assert kind not in found, f"README.md has two {kind} examples"
        found[kind] = (text, document)
    assert set(found) == {"github", "circleci"}, f"README.md's CI examples: found {sorted(found)}"
    return found


def only_job(document: dict[str, Any]) -> dict[str, Any]:
    jobs = document["jobs"]
    assert len(jobs) == 1, f"expected one job, found {sorted(jobs)}"
    job: dict[str, Any] = next(iter(jobs.values()))
    return job


@dataclass
class Rendered:
    """A bash script of one CI job's steps, and what was put in place of the CI-only ones."""

    script: str
    exports: dict[str, str] = field(default_factory=dict)  # the job's environment
    substitutions: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # the run steps the script runs


@dataclass(frozen=True)
class LocalRunner:
    """What stands in for the CI runner: the repository to check out and the CLI's folder."""

    origin: Path
    workspace: Path
    pulumi_dir: Path


def _header(runner: LocalRunner, exports: Mapping[str, str]) -> list[str]:
    lines = ["#!/bin/bash", "set -euo pipefail"]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in exports.items()]
    workspace = shlex.quote(str(runner.workspace))
    lines += [f"mkdir -p {workspace}", f"cd {workspace}"]
    return lines


def _checkout(runner: LocalRunner) -> str:
    return f"git clone --quiet {shlex.quote(str(runner.origin))} ."


def _pulumi_on_path(runner: LocalRunner) -> str:
    cli = shlex.quote(str(runner.pulumi_dir / "pulumi"))
    return (
        f'[ "$(command -v pulumi)" = {cli} ] || {{ echo "pulumi is not {cli}" >&2; exit 1; }}\n'
        "pulumi version"
    )


def render_github(
    document: dict[str, Any], runner: LocalRunner, *, event: str, expressions: Mapping[str, str]
) -> Rendered:
    """The job's steps for one event (`pull_request` or `push`), `${{ }}` from `expressions`."""

    def expand(value: object) -> str:
        def one(match: re.Match[str]) -> str:
            expression = match.group(1)
            assert expression in expressions, f"no local value for ${{{{ {expression} }}}}"
            return expressions[expression]

        return EXPRESSION.sub(one, str(value))

    job = only_job(document)
    assert event in _events(document), f"the workflow does not run on {event}"
    exports = {name: expand(value) for name, value in (job.get("env") or {}).items()}
    lines = _header(runner, exports)
    rendered = Rendered("", exports)
    for number, step in enumerate(job["steps"], start=1):
        condition = step.get("if")
        if condition is not None:
            match = EVENT_CONDITION.match(str(condition).strip())
            assert match, f"step {number}: cannot evaluate `if: {condition}` locally"
            if match.group(1) != event:
                lines.append(f"# step {number} skipped: `if: {condition}` is false on {event}")
                continue
        if "uses" in step:
            action = str(step["uses"]).split("@")[0]
            settings = step.get("with") or {}
            if action == "actions/checkout":
                lines += [f"# step {number}: {step['uses']} -> a clone", _checkout(runner)]
                rendered.substitutions.append(f"{step['uses']}: git clone {runner.origin}")
            elif action == "actions/setup-python":
                lines += [
                    f"# step {number}: {step['uses']} -> the machine's Python in /usr/bin",
                    "python3 --version",
                ]
                rendered.substitutions.append(
                    f"{step['uses']} (python {settings.get('python-version')}, "
                    f"cache {settings.get('cache')}): /usr/bin/python3, pip's own cache"
                )
            elif action == "pulumi/actions":
                assert "command" not in settings, "pulumi/actions should only install the CLI"
                lines += [f"# step {number}: {step['uses']} -> the CLI on PATH"]
                lines.append(_pulumi_on_path(runner))
                rendered.substitutions.append(
                    f"{step['uses']} (pulumi-version {settings.get('pulumi-version')}): "
                    f"{runner.pulumi_dir} on PATH"
                )
            else:
                raise AssertionError(f"step {number}: no local equivalent for {step['uses']}")
            continue
        assert "run" in step, f"step {number}: neither `uses` nor `run`: {step}"
        command = expand(step["run"])
        step_env = " ".join(
            f"{name}={shlex.quote(expand(value))}"
            for name, value in (step.get("env") or {}).items()
        )
        lines.append(f"# step {number}: run")
        lines.append(f"{step_env + ' ' if step_env else ''}bash -e -c {shlex.quote(command)}")
        rendered.commands.append(command)
    rendered.script = "\n".join(lines) + "\n"
    return rendered


def _events(document: dict[Any, Any]) -> set[str]:
    # PyYAML reads the bare key `on` as True (YAML 1.1).
    triggers = document.get("on", document.get(True))
    if isinstance(triggers, str):
        return {triggers}
    return set(triggers or ())


def render_circleci(
    document: dict[str, Any],
    runner: LocalRunner,
    *,
    branch: str,
    username: str,
    bash_env: Path,
) -> Rendered:
    """The job's steps on `branch`, triggered by `username` (CIRCLE_BRANCH, CIRCLE_USERNAME)."""
    job = only_job(document)
    workflow_jobs = [
        job_name
        for workflow in (document.get("workflows") or {}).values()
        if isinstance(workflow, dict)
        for entry in workflow.get("jobs", [])
        for job_name in ([entry] if isinstance(entry, str) else list(entry))
    ]
    assert list(document["jobs"]) == workflow_jobs, "the job is not in the workflow"
    exports = {
        "CIRCLECI": "true",
        "CIRCLE_BRANCH": branch,
        "CIRCLE_USERNAME": username,
        # CircleCI's shell sources this file at the start of every step.
        "BASH_ENV": str(bash_env),
        **{name: str(value) for name, value in (job.get("environment") or {}).items()},
    }
    lines = [*_header(runner, exports), 'touch "$BASH_ENV"']
    rendered = Rendered("", exports)
    for number, step in enumerate(job["steps"], start=1):
        if step == "checkout":
            lines += [f"# step {number}: checkout -> a clone", _checkout(runner)]
            rendered.substitutions.append(f"checkout: git clone {runner.origin}")
            continue
        assert isinstance(step, dict), f"step {number}: {step}"
        assert len(step) == 1, f"step {number}: {step}"
        kind, body = next(iter(step.items()))
        if kind in ("restore_cache", "save_cache"):
            lines.append(f"# step {number}: {kind} -> nothing (pip's own cache on this machine)")
            rendered.substitutions.append(f"{kind} {body}: pip's own cache")
            continue
        assert kind == "run", f"step {number}: no local equivalent for `{kind}`"
        command = body if isinstance(body, str) else body["command"]
        if PULUMI_INSTALL_SCRIPT in command:
            lines += [f"# step {number}: the Pulumi install script -> the CLI on PATH"]
            lines.append(_pulumi_on_path(runner))
            rendered.substitutions.append(
                f"run `{command.strip().splitlines()[0]}`: {runner.pulumi_dir} on PATH"
            )
            continue
        lines.append(f"# step {number}: run")
        lines.append(f"bash -eo pipefail -c {shlex.quote(command)}")
        rendered.commands.append(command)
    rendered.script = "\n".join(lines) + "\n"
    return rendered
