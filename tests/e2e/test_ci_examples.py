"""The README's GitHub Actions and CircleCI examples, run step by step on a PATH without Go.

Each example runs twice, as its CI would: a pull-request job (`pulumi preview` with the policy
pack) and a merge job (`pulumi up`), each in a fresh clone with its own `make bootstrap`. What
only a CI runner has is replaced (see tests/e2e/ci_examples.py): the checkout is a `git clone` of
a local "platform repo" (this work tree, committed, plus the `Pulumi.prod.yaml` that the one-time
`pulumi stack init prod` made); installing Pulumi is a folder on PATH that holds the CLI the
bootstrap chose for this work tree (symlinks to it, with its Python language host and wrappers);
the backend is a file backend; CircleCI is the bundled emulator. pip uses the machine's own index
configuration and cache.

The cost store is a real shared store, as the README's "Sharing a store" has it: a DuckLake catalog
in a fresh database of the session's throwaway PostgreSQL server and its data in a fresh bucket of
the session's S3-compatible (moto) server, both on loopback. Before the jobs run, the test creates
it as a person would (`circlecost store init --owner <the CI actor>`); the jobs get its settings as
secrets (GitHub) or project variables (CircleCI), and leave no store file on the runner.

The fast tests below drive .ci/bootstrap.sh alone (its virtualenv already stamped as installed)
with a CLI on PATH with and without a language host, and with one too old.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from circlecost import engine
from circlecost_emulator import Emulator
from circlecost_emulator.organizations import default_organizations
from tests.clock import SUITE_NOW, child_env
from tests.e2e.ci_examples import (
    LocalRunner,
    Rendered,
    pinned_pulumi_version,
    readme_examples,
    render_circleci,
    render_github,
)
from tests.e2e.stack_support import FAST_POLLING
from tests.engines import store_env
from tests.pulumi_support import REPO, pulumi_root
from tests.services import PostgresServer, S3Bucket

STACK = "prod"
PASSPHRASE = "circlecost-ci-examples"
SEED = 7
TOKEN = "CCIPAT_ciexample_" + hashlib.sha256(b"circlecost-ci-examples").hexdigest()[:40]
POLICY_PACK_RAN = "circlecost@v0.1.0"  # how `pulumi preview` names the pack it ran
# What CI needs of the shared store (README, "Sharing a store"): secrets or project variables.
STORE_SECRETS = (
    "CIRCLECOST_STORE",
    "CIRCLECOST_STORE_DATA_PATH",
    "PGPASSWORD",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
)
# The test server trusts its superuser on loopback; CI's secret still needs a value to render.
PGPASSWORD = "unused-by-the-test-server"
EMBEDDED_STORE = "costs.duckdb"
GIT_IDENTITY = [
    "-c",
    "user.name=circlecost tests",
    "-c",
    "user.email=tests@circlecost.invalid",
    "-c",
    "commit.gpgsign=false",
    "-c",
    "core.hooksPath=/dev/null",
]
# The machine's pip index configuration and certificates (and a proxy, if there is one).
PASSED_THROUGH = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
)


def readme() -> dict[str, tuple[str, dict[str, Any]]]:
    return readme_examples((REPO / "README.md").read_text())


def pulumi_folder(tmp_path: Path) -> Path:
    """A folder for PATH with `pulumi` and its language host and wrappers, as an installed CLI
    has them: symlinks to the CLI the bootstrap chose for this work tree."""
    folder = tmp_path / "pulumi-bin"
    folder.mkdir()
    for source in sorted((pulumi_root() / "bin").iterdir()):
        (folder / source.name).symlink_to(source)
    assert (folder / "pulumi").exists(), f"no pulumi in {pulumi_root() / 'bin'}"
    return folder


def machine_env(tmp_path: Path, pulumi_dir: Path) -> dict[str, str]:
    """A runner's environment built from nothing: no Go, no CIRCLECOST_/PULUMI_ variables but
    the ones set here, the machine's pip configuration and HOME (pip's cache)."""
    path = os.pathsep.join([str(pulumi_dir), "/usr/bin", "/bin"])
    assert shutil.which("go", path=path) is None, f"Go is on {path}"
    env = {
        name: value
        for name, value in os.environ.items()
        if name.startswith("PIP_") or name in PASSED_THROUGH
    }
    env.update(
        {
            "PATH": path,
            "HOME": os.environ["HOME"],
            "LANG": "C.UTF-8",
            "CI": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            # The bootstrap's build cache: it must stay empty when a CLI is on PATH.
            "CIRCLECOST_CACHE": str(tmp_path / "circlecost-cache"),
            **FAST_POLLING,  # the emulator finishes exports at once
            **child_env(),  # the provider and the policy pack run on the suite's clock
        }
    )
    return env


def run(
    command: list[str], cwd: Path, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{shlex.join(command)}:\n{result.stdout}\n{result.stderr}"
    return result


def overlay_working_tree(clone: Path) -> None:
    """Makes the clone hold this work tree as it is: uncommitted and new (not ignored) files."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--modified", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source, target = REPO / name, clone / name
        if source.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif not source.exists():
            target.unlink(missing_ok=True)


@dataclass
class Backend:
    """The stack's backend and secrets passphrase, as CI's secrets or project variables."""

    url: str
    passphrase: str = PASSPHRASE

    def env(self) -> dict[str, str]:
        return {"PULUMI_BACKEND_URL": self.url, "PULUMI_CONFIG_PASSPHRASE": self.passphrase}


def platform_repo(tmp_path: Path, env: dict[str, str], backend: Backend, base_url: str) -> Path:
    """The repository CI checks out: this project, plus the stack a person made once with
    `pulumi stack init prod` and committed (Pulumi.prod.yaml, actor left to CI)."""
    origin = tmp_path / "platform-repo"
    run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(origin)], tmp_path, env)
    overlay_working_tree(origin)
    setup_env = {**env, **backend.env(), "PULUMI_HOME": str(tmp_path / "workstation-pulumi")}
    run(["pulumi", "stack", "init", STACK], origin, setup_env)
    stack_file = origin / f"Pulumi.{STACK}.yaml"
    settings = yaml.safe_load(stack_file.read_text()) or {}
    org = default_organizations(SEED)[0]
    expires = (SUITE_NOW.date() + timedelta(days=60)).isoformat()
    settings["config"] = {
        "circlecost:circleciUrl": base_url,  # the emulator in place of CircleCI
        "circlecost:allowLoopbackDownloads": "true",
        "circlecost:createTimeoutSeconds": "120",
        "circlecost:integrations": [
            {
                "name": org.name,
                "organization_id": org.id,
                "description": "the CI example's organization",
                "token_expires_on": expires,
                "backfill_months": 0,
            }
        ],
    }
    stack_file.write_text(yaml.safe_dump(settings, sort_keys=False))
    token_key = f"circlecost:{org.name}-token"
    run(
        ["pulumi", "config", "set", "--secret", token_key, TOKEN, "--stack", STACK],
        origin,
        setup_env,
    )
    run(["git", *GIT_IDENTITY, "add", "-A"], origin, env)
    run(
        ["git", *GIT_IDENTITY, "commit", "--quiet", "-m", "circlecost: the prod stack"], origin, env
    )
    return origin


@dataclass
class SharedStore:
    """The shared cost store, as CI's secrets or project variables: a DuckLake catalog (a libpq
    string without a password) and its data path in an S3-compatible bucket."""

    catalog: str
    data_path: str
    aws: dict[str, str]

    def env(self) -> dict[str, str]:
        return {
            **store_env(engine.SharedStore(self.catalog, self.data_path)),
            "PGPASSWORD": PGPASSWORD,
            **self.aws,
        }

    def create(self, owner: str, cwd: Path, env: dict[str, str]) -> None:
        """`circlecost store init`, once, by a person (this work tree's CLI, run in `cwd`):
        `owner` becomes the store's first Organization Owner."""
        created = run(
            [
                str(REPO / ".venv" / "bin" / "circlecost"),
                "store",
                "init",
                "--owner",
                owner,
                "--data-path",
                self.data_path,
            ],
            cwd,
            {**env, **self.env()},
        )
        assert f"{owner} is its Organization Owner" in created.stdout, created.stdout


def github_expressions(actor: str, backend: Backend, store: SharedStore) -> dict[str, str]:
    """Local values of the workflow's `${{ }}` expressions: the actor and every secret."""
    secrets = {**backend.env(), **store.env()}
    return {"github.actor": actor, **{f"secrets.{k}": v for k, v in secrets.items()}}


@dataclass
class JobRun:
    name: str
    workspace: Path
    rendered: Rendered
    output: str
    returncode: int
    seconds: float


def run_job(
    tmp_path: Path, name: str, rendered: Rendered, workspace: Path, env: dict[str, str]
) -> JobRun:
    script = tmp_path / f"{name}.sh"
    script.write_text(rendered.script)
    job_env = {**env, "PULUMI_HOME": str(tmp_path / f"{name}-pulumi-home")}
    started = time.monotonic()
    result = subprocess.run(
        ["/bin/bash", str(script)],
        cwd=tmp_path,
        env=job_env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    seconds = time.monotonic() - started
    output = result.stdout + result.stderr
    (tmp_path / f"{name}.log").write_text(output)
    print(f"\n--- {name} ({seconds:.0f} s): {script}\n" + "\n".join(rendered.substitutions))
    return JobRun(name, workspace, rendered, output, result.returncode, seconds)


def assert_bootstrap_used_the_cli_on_path(job: JobRun, env: dict[str, str]) -> None:
    assert job.returncode == 0, f"{job.name} failed:\n{job.rendered.script}\n{job.output}"
    version = pinned_pulumi_version()
    said = "\n".join(line for line in job.output.splitlines() if line.startswith("bootstrap:"))
    assert f"bootstrap: using pulumi {version} from PATH" in said, job.output
    assert "with its Python language host" in said
    assert "building the" not in said
    assert "fetching" not in said
    assert "stand-in" not in said
    # A platform repo's job installs circlecost alone: no test tools, no PostgreSQL for tests.
    assert "without its dev tools" in said, said
    assert "PostgreSQL" not in said
    assert not (job.workspace / ".venv" / "bin" / "pytest").exists()
    assert not (job.workspace / ".venv" / "bin" / "circlecost_langhost.py").exists()
    assert (job.workspace / ".venv" / "pulumi-root").read_text().strip() == str(pulumi_root())
    # The cache may hold the runnable copy of the policy pack; never a CLI or its build.
    cache = Path(env["CIRCLECOST_CACHE"])
    built = [cache / "pulumi", cache / "build"]
    assert not any(folder.exists() for folder in built), "the bootstrap built or cached a CLI"


def assert_preview_ran_the_policy_pack(job: JobRun) -> None:
    assert POLICY_PACK_RAN in job.output, job.output
    assert "Previewing update (prod)" in job.output
    assert "Updating (prod)" not in job.output


def assert_no_store_on_the_runner(job: JobRun) -> None:
    """The job used the shared store only: no embedded store file in its workspace."""
    files = [
        path
        for path in job.workspace.rglob(f"{EMBEDDED_STORE}*")
        if ".venv" not in path.relative_to(job.workspace).parts
    ]
    assert files == [], f"{job.name} left a store on the runner: {files}"


def assert_up_created_the_integration(
    job: JobRun, env: dict[str, str], actor: str, store: SharedStore
) -> None:
    assert job.returncode == 0, f"{job.name} failed:\n{job.rendered.script}\n{job.output}"
    assert "Updating (prod)" in job.output
    assert POLICY_PACK_RAN in job.output  # `up` runs its own preview with the pack first
    assert_no_store_on_the_runner(job)
    # What the job left is in the shared store, as any runner or person reads it.
    cli = [
        str(job.workspace / ".venv" / "bin" / "circlecost"),
        "--store",
        store.env()["CIRCLECOST_STORE"],
    ]
    store_env = {**env, **store.env()}
    status = run([*cli, "status"], job.workspace, store_env).stdout
    assert "Stable" in status, status
    access = run([*cli, "access", "list"], job.workspace, store_env).stdout
    owners = [line for line in access.splitlines() if actor in line]
    assert any("Organization Owner" in line for line in owners), access


def rerun_step(
    tmp_path: Path, job: JobRun, command: str, env: dict[str, str], **changed: str
) -> subprocess.CompletedProcess[str]:
    """One run step again, in the job's workspace and environment (`changed` variables set)."""
    variables = {**job.rendered.exports, **changed}
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables.items())
    script = tmp_path / f"{job.name}-again.sh"
    script.write_text(
        f"set -euo pipefail\n{exports}cd {shlex.quote(str(job.workspace))}\n"
        f"bash -e -c {shlex.quote(command)}\n"
    )
    job_env = {**env, "PULUMI_HOME": str(tmp_path / f"{job.name}-pulumi-home")}
    return subprocess.run(
        ["/bin/bash", str(script)],
        env=job_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    org = default_organizations(SEED)[0]
    with Emulator(seed=SEED, org_admin_tokens={org.id: TOKEN}) as running:
        yield running


@pytest.fixture
def shared_store(postgres_server: PostgresServer, s3_bucket: S3Bucket) -> SharedStore:
    """A shared store's place: an empty catalog database and a fresh bucket (not created yet)."""
    return SharedStore(
        postgres_server.fresh_database("ci_examples"), s3_bucket.url, dict(s3_bucket.env)
    )


def test_the_readme_examples_install_pulumi_the_standard_way_and_cache_pip() -> None:
    examples = readme()
    version = pinned_pulumi_version()
    github_text, github = examples["github"]
    job = next(iter(github["jobs"].values()))
    actions = {str(step["uses"]).split("@")[0]: step for step in job["steps"] if "uses" in step}
    assert actions["pulumi/actions"]["with"]["pulumi-version"] == version
    assert actions["actions/setup-python"]["with"]["cache"] == "pip"
    assert actions["actions/setup-python"]["with"]["cache-dependency-path"] == "pyproject.toml"
    assert job["env"]["CIRCLECOST_ACTOR"] == "${{ github.actor }}"
    assert job["env"]["CIRCLECOST_DEV_TOOLS"] == "0"  # circlecost alone, no test tools
    for name in STORE_SECRETS:  # the shared store's settings, from the repository's secrets
        assert job["env"][name] == f"${{{{ secrets.{name} }}}}", name
    circleci_text, circleci = examples["circleci"]
    assert next(iter(circleci["jobs"].values()))["environment"]["CIRCLECOST_DEV_TOOLS"] == "0"
    assert f"https://get.pulumi.com | sh -s -- --version {version}" in circleci_text
    assert 'checksum "pyproject.toml"' in circleci_text
    assert "restore_cache" in circleci_text
    assert "save_cache" in circleci_text
    assert 'CIRCLECOST_ACTOR="$CIRCLE_USERNAME"' in circleci_text
    for name in STORE_SECRETS:  # project environment variables or a context
        assert re.search(rf"\b{name}\b", circleci_text), name
    for text in (github_text, circleci_text):
        assert "not released yet" not in text
        assert "preview --stack prod" in text
        assert "up --stack prod" in text
        assert not re.search(r"\bgo (build|install|get|mod)\b|setup-go|golang", text)
    text = (REPO / "README.md").read_text()
    assert "circlecost store init --owner" in text
    assert f"pulumi stack init {STACK}" in text
    assert f"Pulumi.{STACK}.yaml" in text


def test_the_github_actions_example_runs_on_a_path_without_go(
    tmp_path: Path, emulator: Emulator, shared_store: SharedStore
) -> None:
    _text, document = readme()["github"]
    pulumi_dir = pulumi_folder(tmp_path)
    env = machine_env(tmp_path, pulumi_dir)
    backend = Backend(f"file://{tmp_path / 'pulumi-state'}")
    (tmp_path / "pulumi-state").mkdir()
    origin = platform_repo(tmp_path, env, backend, emulator.base_url)
    shared_store.create("octo-platform", tmp_path, env)  # the workflow's actor is the store's owner
    expressions = github_expressions("octo-platform", backend, shared_store)

    pull_request = render_github(
        document,
        LocalRunner(origin, tmp_path / "pr-workspace", pulumi_dir),
        event="pull_request",
        expressions=expressions,
    )
    assert "circlecost.gitops preview" in pull_request.commands[-1]
    assert {name: pull_request.exports[name] for name in STORE_SECRETS} == shared_store.env()
    job = run_job(tmp_path, "github-pull-request", pull_request, tmp_path / "pr-workspace", env)
    assert_bootstrap_used_the_cli_on_path(job, env)
    assert_preview_ran_the_policy_pack(job)
    assert_no_store_on_the_runner(job)

    # The owner-role policy passed because `store init` made the actor an Organization Owner of
    # the shared store: the same preview by someone who holds no role there fails.
    stranger = rerun_step(
        tmp_path, job, pull_request.commands[-1], env, CIRCLECOST_ACTOR="octo-stranger"
    )
    assert stranger.returncode != 0, stranger.stdout + stranger.stderr
    assert "circlecost-owner-role" in stranger.stdout + stranger.stderr
    assert "'octo-stranger' holds no role" in stranger.stdout + stranger.stderr

    # The preview step is gated by the pack: a pull request with a token that lives too long fails.
    stack_file = job.workspace / f"Pulumi.{STACK}.yaml"
    too_long = (SUITE_NOW.date() + timedelta(days=400)).isoformat()
    stack_file.write_text(
        stack_file.read_text().replace(
            (SUITE_NOW.date() + timedelta(days=60)).isoformat(), too_long
        )
    )
    failed = rerun_step(tmp_path, job, pull_request.commands[-1], env)
    assert failed.returncode != 0, failed.stdout + failed.stderr
    assert "circlecost-token-rotation" in failed.stdout + failed.stderr

    push = render_github(
        document,
        LocalRunner(origin, tmp_path / "merge-workspace", pulumi_dir),
        event="push",
        expressions=expressions,
    )
    merge = run_job(tmp_path, "github-push", push, tmp_path / "merge-workspace", env)
    assert_bootstrap_used_the_cli_on_path(merge, env)
    assert_up_created_the_integration(merge, env, "octo-platform", shared_store)


def test_the_circleci_example_runs_on_a_path_without_go(
    tmp_path: Path, emulator: Emulator, shared_store: SharedStore
) -> None:
    _text, document = readme()["circleci"]
    pulumi_dir = pulumi_folder(tmp_path)
    backend = Backend(f"file://{tmp_path / 'pulumi-state'}")
    (tmp_path / "pulumi-state").mkdir()
    env = machine_env(tmp_path, pulumi_dir)
    origin = platform_repo(tmp_path, env, backend, emulator.base_url)
    shared_store.create("circle-platform", tmp_path, env)  # the triggering user owns the store
    # CircleCI project environment variables (or a context's)
    project_env = {**env, **backend.env(), **shared_store.env()}

    def job(name: str, branch: str) -> JobRun:
        workspace = tmp_path / f"{name}-workspace"
        rendered = render_circleci(
            document,
            LocalRunner(origin, workspace, pulumi_dir),
            branch=branch,
            username="circle-platform",
            bash_env=tmp_path / f"{name}-bash-env",
        )
        assert any("install script" in line for line in rendered.script.splitlines())
        return run_job(tmp_path, f"circleci-{name}", rendered, workspace, project_env)

    feature = job("feature", "add-acme")
    assert_bootstrap_used_the_cli_on_path(feature, env)
    assert feature.returncode == 0
    assert_preview_ran_the_policy_pack(feature)
    assert_no_store_on_the_runner(feature)

    main = job("main", "main")
    assert_bootstrap_used_the_cli_on_path(main, env)
    assert_up_created_the_integration(main, project_env, "circle-platform", shared_store)


# --- .ci/bootstrap.sh alone, with its virtualenv already installed --------------------------


def bootstrap_tree(tmp_path: Path) -> Path:
    """A copy of the bootstrap and the stand-in host, with .venv stamped as installed."""
    root = tmp_path / "project"
    shutil.copytree(REPO / ".ci", root / ".ci")
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    venv_bin = root / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / "python").symlink_to("/usr/bin/python3")
    # As the bootstrap stamps it: pyproject.toml, emulator/pyproject.toml (absent here) and the
    # build backend, in that order.
    stamp = hashlib.sha256(
        (root / "pyproject.toml").read_bytes() + (root / ".ci" / "build_backend.py").read_bytes()
    ).hexdigest()
    (root / ".venv" / ".circlecost-installed").write_text(stamp + "\n")
    return root


def bootstrap(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/bash", str(root / ".ci" / "bootstrap.sh")],
        cwd=root,
        env={**env, "PULUMI_HOME": str(root.parent / "pulumi-home")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def cli_folder(tmp_path: Path, helpers: list[str]) -> Path:
    """An installed CLI with only `helpers` beside it. `pulumi` is a small script that runs the
    real one, so that nothing beside the real binary counts as beside this one."""
    folder = tmp_path / "installed-cli" / "bin"
    folder.mkdir(parents=True)
    cli = folder / "pulumi"
    cli.write_text(f'#!/bin/sh\nexec {shlex.quote(str(pulumi_root() / "bin" / "pulumi"))} "$@"\n')
    cli.chmod(0o755)
    for name in helpers:
        (folder / name).symlink_to(pulumi_root() / "bin" / name)
    return folder


def test_bootstrap_uses_a_cli_on_path_with_its_host_and_builds_nothing(tmp_path: Path) -> None:
    root = bootstrap_tree(tmp_path)
    folder = pulumi_folder(tmp_path)
    env = machine_env(tmp_path, folder)
    result = bootstrap(root, env)
    assert result.returncode == 0, result.stderr
    assert f"using pulumi {pinned_pulumi_version()} from PATH ({folder}/pulumi)" in result.stderr
    assert "with its Python language host" in result.stderr
    assert "stand-in" not in result.stderr
    assert (root / ".venv" / "pulumi-root").read_text().strip() == str(pulumi_root())
    assert not (root / ".venv" / "bin" / "pulumi-language-python").exists()
    assert not Path(env["CIRCLECOST_CACHE"]).exists()


def test_bootstrap_installs_the_stand_in_host_only_when_the_cli_has_none(tmp_path: Path) -> None:
    root = bootstrap_tree(tmp_path)
    folder = cli_folder(tmp_path, ["pulumi-language-python-exec", "pulumi-resource-pulumi-python"])
    env = machine_env(tmp_path, folder)
    result = bootstrap(root, env)
    assert result.returncode == 0, result.stderr
    assert "it has no Python language host" in result.stderr
    assert "stand-in host (.ci/langhost) is now in .venv/bin; building nothing" in result.stderr
    venv_bin = root / ".venv" / "bin"
    host = venv_bin / "pulumi-language-python"
    assert host.is_file()
    assert not host.is_symlink()
    assert "circlecost" in host.read_text()
    assert (venv_bin / "circlecost_langhost.py").is_file()
    assert (venv_bin / "pulumi-language-python-exec").resolve() == (
        pulumi_root() / "bin" / "pulumi-language-python-exec"
    )
    assert not (venv_bin / "pulumi-resource-pulumi-python").exists()  # beside the CLI already
    assert (root / ".venv" / "pulumi-root").read_text().strip() == str(folder.parent)
    assert not Path(env["CIRCLECOST_CACHE"]).exists()

    # Once the CLI has its host, the next bootstrap takes the stand-in away again.
    (folder / "pulumi-language-python").symlink_to(pulumi_root() / "bin" / "pulumi-language-python")
    again = bootstrap(root, env)
    assert again.returncode == 0, again.stderr
    assert "removed the stand-in language host from .venv/bin" in again.stderr
    assert "with its Python language host" in again.stderr
    assert not host.exists()


def test_bootstrap_says_what_is_missing_when_the_cli_is_too_old_and_there_is_no_go(
    tmp_path: Path,
) -> None:
    root = bootstrap_tree(tmp_path)
    folder = tmp_path / "old-cli" / "bin"
    folder.mkdir(parents=True)
    old = folder / "pulumi"
    old.write_text("#!/bin/sh\necho v3.100.0\n")
    old.chmod(0o755)
    result = bootstrap(root, machine_env(tmp_path, folder))
    assert result.returncode == 1
    assert f"ignoring pulumi 3.100.0 at {old} on PATH (older than 3.221.0)" in result.stderr
    assert "no Pulumi CLI on PATH and no Go to build one" in result.stderr
    assert not (root / ".venv" / "pulumi-root").exists()


def test_the_rendered_scripts_replace_exactly_the_ci_only_steps(tmp_path: Path) -> None:
    examples = readme()
    runner = LocalRunner(tmp_path / "origin", tmp_path / "ws", tmp_path / "pulumi-bin")
    store = SharedStore(
        "host=db.internal dbname=circlecost user=ci",
        "s3://team-costs/circlecost/",
        {"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", "AWS_REGION": "eu-west-1"},
    )
    github = render_github(
        examples["github"][1],
        runner,
        event="pull_request",
        expressions=github_expressions("a", Backend("file:///x", "p"), store)
        | {"secrets.AWS_ENDPOINT_URL": ""},  # unset on AWS: GitHub expands it to nothing
    )
    assert github.exports["CIRCLECOST_STORE"] == (
        "ducklake:postgres:host=db.internal dbname=circlecost user=ci"
    )
    assert set(STORE_SECRETS) <= set(github.exports)
    assert [s.split(":")[0].split("@")[0] for s in github.substitutions] == [
        "actions/checkout",
        "actions/setup-python",
        "pulumi/actions",
    ]
    assert github.commands == [
        "make bootstrap",
        ".venv/bin/python -m circlecost.gitops preview --stack prod",
    ]
    circleci = render_circleci(
        examples["circleci"][1], runner, branch="main", username="a", bash_env=tmp_path / "env"
    )
    kinds = [s.split()[0].rstrip(":") for s in circleci.substitutions]
    assert kinds == ["checkout", "restore_cache", "run", "save_cache"]
    assert circleci.commands[0] == "make bootstrap"
    assert "circlecost.gitops up --stack prod" in circleci.commands[1]
    assert circleci.exports["CIRCLE_BRANCH"] == "main"
