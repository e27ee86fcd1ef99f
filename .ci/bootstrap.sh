#!/usr/bin/env bash
# Installs what circlecost needs to run and test, and nothing twice:
#   1. a virtualenv in .venv with the project and its dev tools (re-installed when pyproject.toml changes);
#   2. a Pulumi CLI. A `pulumi` on PATH that is new enough is used as it is, with the Python
#      language host beside it or on PATH; only when it has no host is circlecost's stand-in
#      host (.ci/langhost) installed into .venv/bin. Nothing is built then and Go is not needed.
#      With no usable `pulumi` on PATH, the CLI is built once from the Go module proxy into a
#      cache outside the work tree (CIRCLECOST_BUILD_PULUMI=1 forces this path).
#   3. PostgreSQL server binaries (initdb, pg_ctl, postgres) for the shared-store tests, which
#      start a throwaway cluster of their own (tests/services.py). As root with apt-get, the Debian
#      package `postgresql` is installed when none is found; otherwise this only warns.
# The chosen CLI's root folder (the parent of its bin/) is written to .venv/pulumi-root, and the
# PostgreSQL bin folder to .venv/postgres-bin.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PULUMI_VERSION=3.274.1          # close to the pulumi SDK pinned in pyproject.toml (3.272.0)
PULUMI_MIN_VERSION=3.221.0      # the first CLI that runs Python policy packs through the language host
GO_MIN_VERSION=1.26
CACHE=${CIRCLECOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/circlecost}
PULUMI_ROOT=$CACHE/pulumi/v$PULUMI_VERSION
VENV=$ROOT/.venv

say() { printf 'bootstrap: %s\n' "$*" >&2; }
die() { printf 'bootstrap: error: %s\n' "$*" >&2; exit 1; }

version_ge() {  # version_ge A B: A >= B
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1)" = "$2" ]
}

find_python() {
  local candidate
  for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  return 1
}

# CIRCLECOST_DEV_TOOLS=0 installs circlecost alone: what a platform repo's CI job needs to run
# `pulumi preview|up` (no test tools, no test servers), and much faster than the dev install.
DEV_TOOLS=${CIRCLECOST_DEV_TOOLS:-1}

ensure_venv() {
  local stamp=$VENV/.circlecost-installed want extras="[dev]" what="circlecost, its emulator and dev tools"
  local -a emulator=()
  [ -f "$ROOT/emulator/pyproject.toml" ] && emulator=(-e "$ROOT/emulator")
  # The files that decide what pip installs; emulator/ may be absent (a trimmed copy of the project).
  local -a inputs=("$ROOT/pyproject.toml")
  [ -f "$ROOT/emulator/pyproject.toml" ] && inputs+=("$ROOT/emulator/pyproject.toml")
  inputs+=("$ROOT/.ci/build_backend.py")
  want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
  if [ "$DEV_TOOLS" = 0 ]; then
    extras=""; emulator=(); what="circlecost without its dev tools or emulator (CIRCLECOST_DEV_TOOLS=0)"
    want="$want without dev tools"
  fi
  if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  local python
  python=$(find_python) || die "Python 3.11 or newer is needed; install it (e.g. apt-get install python3) or set PYTHON=/path/to/python3.11"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtualenv .venv with $python"
    "$python" -m venv "$VENV" || die "could not create .venv with $python (on Debian: apt-get install python3-venv)"
  fi
  say "installing $what into .venv (pip)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip >&2 || die "pip could not upgrade itself in .venv"
  "$VENV/bin/python" -m pip install --quiet -e "${ROOT}${extras}" "${emulator[@]}" >&2 || die "pip install -e '.${extras}' ${emulator[*]:+-e ./emulator }failed; see the pip output above"
  echo "$want" > "$stamp"
}

PATH_CLI=""; PATH_CLI_VERSION=""; PATH_CLI_DIR=""

find_cli_on_path() {
  # Sets PATH_CLI, PATH_CLI_VERSION and PATH_CLI_DIR (the folder of the real binary, symlinks
  # resolved) when a `pulumi` on PATH is new enough.
  local bin version
  bin=$(command -v pulumi 2>/dev/null) || return 1
  version=$(PULUMI_SKIP_UPDATE_CHECK=true "$bin" version 2>/dev/null |
    grep -oE '[0-9]+\.[0-9]+\.[0-9]+[^[:space:]]*' | head -n1) || true
  [ -n "$version" ] || { say "ignoring $bin on PATH: \`pulumi version\` printed no version"; return 1; }
  version_ge "$version" "$PULUMI_MIN_VERSION" ||
    { say "ignoring pulumi $version at $bin on PATH (older than $PULUMI_MIN_VERSION)"; return 1; }
  PATH_CLI=$bin
  PATH_CLI_VERSION=$version
  PATH_CLI_DIR=$(cd "$(dirname "$(readlink -f "$bin")")" && pwd)
}

helper_file() {
  # helper_file NAME: NAME beside the CLI on PATH, else on PATH, else in circlecost's cache.
  local name=$1 found
  if [ -x "$PATH_CLI_DIR/$name" ]; then echo "$PATH_CLI_DIR/$name"; return 0; fi
  if found=$(command -v "$name" 2>/dev/null) && [ "$(dirname "$found")" != "$VENV/bin" ]; then
    echo "$found"; return 0
  fi
  if [ -x "$PULUMI_ROOT/bin/$name" ]; then echo "$PULUMI_ROOT/bin/$name"; return 0; fi
  return 1
}

venv_has_stand_in() {
  # install_stand_in_into_venv copies the stand-in (a regular file); link_into_venv only links.
  local host=$VENV/bin/pulumi-language-python
  [ -f "$host" ] && [ ! -L "$host" ] && grep -q circlecost "$host" 2>/dev/null
}

remove_stand_in_from_venv() {
  # A stand-in host installed into .venv/bin by an earlier run, no longer needed.
  local f
  venv_has_stand_in || return 0
  for f in pulumi-language-python circlecost_langhost.py pulumi-language-python-exec; do
    rm -f "$VENV/bin/$f"
  done
  say "removed the stand-in language host from .venv/bin (no longer needed)"
}

unlink_cached_cli_from_venv() {
  # Links to the cached build in .venv/bin would shadow the chosen CLI after `activate`.
  local f
  for f in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python circlecost_langhost.py; do
    if [ -L "$VENV/bin/$f" ] && [ "$(readlink "$VENV/bin/$f")" = "$PULUMI_ROOT/bin/$f" ]; then
      rm -f "$VENV/bin/$f"
    fi
  done
}

install_stand_in_into_venv() {
  # The CLI on PATH has no Python language host: put circlecost's stand-in in .venv/bin (which
  # provider.gitops, the demo and the tests put on PATH after the CLI's own folder). The stand-in
  # runs the SDK's pulumi-language-python-exec script, which must sit beside it.
  local exec_script wrapper
  if ! exec_script=$(helper_file pulumi-language-python-exec); then
    command -v go >/dev/null 2>&1 ||
      die "pulumi $PATH_CLI_VERSION at $PATH_CLI has no Python language host (pulumi-language-python) and no pulumi-language-python-exec beside it or on PATH: install the full Pulumi CLI (https://www.pulumi.com/docs/install/), which ships both"
    say "fetching pulumi-language-python-exec from github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION (Go module cache)"
    mkdir -p "$PULUMI_ROOT/bin"
    install_sdk_files
    exec_script=$PULUMI_ROOT/bin/pulumi-language-python-exec
  fi
  install -m 0755 "$ROOT/.ci/langhost/pulumi-language-python" "$VENV/bin/pulumi-language-python"
  install -m 0644 "$ROOT/.ci/langhost/circlecost_langhost.py" "$VENV/bin/circlecost_langhost.py"
  ln -sfn "$exec_script" "$VENV/bin/pulumi-language-python-exec"
  if ! [ -x "$PATH_CLI_DIR/pulumi-resource-pulumi-python" ] && ! command -v pulumi-resource-pulumi-python >/dev/null 2>&1; then
    wrapper=$(helper_file pulumi-resource-pulumi-python) ||
      die "pulumi $PATH_CLI_VERSION at $PATH_CLI has no pulumi-resource-pulumi-python (the dynamic-provider wrapper) beside it or on PATH: install the full Pulumi CLI (https://www.pulumi.com/docs/install/)"
    ln -sfn "$wrapper" "$VENV/bin/pulumi-resource-pulumi-python"
  fi
}

is_cached_build() {
  # The CLI found on PATH is circlecost's own cached build (say, through an activated .venv).
  [ "$PATH_CLI_DIR" = "$PULUMI_ROOT/bin" ] && cached_cli_is_complete
}

use_cli_on_path() {
  # Uses the `pulumi` find_cli_on_path found, as it is; installs the stand-in host only when it
  # has none.
  local host
  unlink_cached_cli_from_venv
  if [ -x "$PATH_CLI_DIR/pulumi-language-python" ]; then
    host=$PATH_CLI_DIR/pulumi-language-python
  elif host=$(command -v pulumi-language-python 2>/dev/null) &&
       [ "$host" != "$VENV/bin/pulumi-language-python" ]; then
    :  # on PATH elsewhere (the one in .venv/bin is a stand-in of an earlier run: refreshed below)
  else
    host=""
  fi
  if [ -n "$host" ]; then
    remove_stand_in_from_venv
    say "using pulumi $PATH_CLI_VERSION from PATH ($PATH_CLI) with its Python language host ($host); building nothing"
  else
    install_stand_in_into_venv
    say "using pulumi $PATH_CLI_VERSION from PATH ($PATH_CLI); it has no Python language host, so circlecost's stand-in host (.ci/langhost) is now in .venv/bin; building nothing"
  fi
  dirname "$PATH_CLI_DIR" > "$VENV/pulumi-root"
}

cached_cli_is_complete() {
  local bin=$PULUMI_ROOT/bin f
  for f in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python; do
    [ -x "$bin/$f" ] || return 1
  done
  [ "$("$bin/pulumi" version 2>/dev/null)" = "v$PULUMI_VERSION" ]
}

build_pulumi() {
  command -v go >/dev/null 2>&1 || die "no Pulumi CLI on PATH and no Go to build one: install the Pulumi CLI >= $PULUMI_MIN_VERSION (https://www.pulumi.com/docs/install/; it is used as it is), or Go >= $GO_MIN_VERSION to build one"
  local gov
  gov=$(go env GOVERSION | sed 's/^go//')
  version_ge "$gov" "$GO_MIN_VERSION" || die "Go $gov is too old to build Pulumi v$PULUMI_VERSION: install Go >= $GO_MIN_VERSION"
  local work=$CACHE/build/pulumi-v$PULUMI_VERSION
  mkdir -p "$work" "$PULUMI_ROOT/bin"
  say "building the Pulumi CLI v$PULUMI_VERSION from the Go module proxy into $PULUMI_ROOT (first time only; takes several minutes)"
  cat > "$work/go.mod" <<GOMOD
module circlecost.invalid/pulumicli

go $GO_MIN_VERSION

require (
	github.com/pulumi/pulumi/pkg/v3 v$PULUMI_VERSION
	github.com/pulumi/pulumi/sdk/v3 v$PULUMI_VERSION
)

// Repeats the non-local replace of pkg's own go.mod (replaces in dependencies are ignored).
replace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
GOMOD
  cat > "$work/tools.go" <<'GOSRC'
//go:build tools

package tools

import _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"
GOSRC
  (cd "$work" && go mod tidy >&2 && go build -o "$PULUMI_ROOT/bin/pulumi" \
      -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
      github.com/pulumi/pulumi/pkg/v3/cmd/pulumi >&2) ||
    die "go build of github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$PULUMI_VERSION failed; see the go output above"
}

install_sdk_files() {
  local sdk
  sdk=$(cd "$CACHE/build/pulumi-v$PULUMI_VERSION" 2>/dev/null && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3 2>/dev/null) ||
    sdk=$(go env GOMODCACHE)/github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION
  [ -d "$sdk/python" ] || (cd /tmp && go mod download github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION >&2) ||
    die "could not fetch github.com/pulumi/pulumi/sdk/v3@v$PULUMI_VERSION for the Python helper files"
  install -m 0755 "$sdk/python/cmd/pulumi-language-python-exec" "$PULUMI_ROOT/bin/pulumi-language-python-exec"
  install -m 0755 "$sdk/python/dist/pulumi-resource-pulumi-python" "$PULUMI_ROOT/bin/pulumi-resource-pulumi-python"
}

install_language_host() {
  local module=github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3
  local ref=${PULUMI_LANGUAGE_PYTHON_REF:-v$PULUMI_VERSION}
  local work=$CACHE/build/pulumi-v$PULUMI_VERSION output
  if [ -x "$PULUMI_ROOT/bin/pulumi-language-python" ] && ! grep -q circlecost "$PULUMI_ROOT/bin/pulumi-language-python" 2>/dev/null; then
    return 0  # the official host was built earlier
  fi
  say "building the Python language host $module@$ref"
  if output=$(cd "$work" && go get "$module@$ref" 2>&1 &&
       go build -o "$PULUMI_ROOT/bin/pulumi-language-python.official" "$module" 2>&1); then
    mv "$PULUMI_ROOT/bin/pulumi-language-python.official" "$PULUMI_ROOT/bin/pulumi-language-python"
    return 0
  fi
  (cd "$work" && go mod tidy >/dev/null 2>&1) || true  # undo the failed go get
  say "the official language host cannot be built here: $(printf '%s' "$output" | tail -n 2 | tr '\n' ' ')"
  say "installing circlecost's stand-in language host (.ci/langhost) beside the CLI instead"
  install -m 0755 "$ROOT/.ci/langhost/pulumi-language-python" "$PULUMI_ROOT/bin/pulumi-language-python"
  install -m 0644 "$ROOT/.ci/langhost/circlecost_langhost.py" "$PULUMI_ROOT/bin/circlecost_langhost.py"
}

refresh_stand_in() {
  # Keeps an installed stand-in host in step with the repository's copy.
  if grep -q circlecost "$PULUMI_ROOT/bin/pulumi-language-python" 2>/dev/null; then
    cmp -s "$ROOT/.ci/langhost/circlecost_langhost.py" "$PULUMI_ROOT/bin/circlecost_langhost.py" ||
      install -m 0644 "$ROOT/.ci/langhost/circlecost_langhost.py" "$PULUMI_ROOT/bin/circlecost_langhost.py"
  fi
}

ensure_pulumi() {
  if [ -n "${CIRCLECOST_BUILD_PULUMI:-}" ]; then
    say "CIRCLECOST_BUILD_PULUMI is set: not looking for a pulumi on PATH"
  elif find_cli_on_path && ! is_cached_build; then
    use_cli_on_path
    return 0
  fi
  if cached_cli_is_complete; then
    say "using pulumi $PULUMI_VERSION built earlier in $PULUMI_ROOT/bin"
  else
    local started=$SECONDS
    [ "$("$PULUMI_ROOT/bin/pulumi" version 2>/dev/null)" = "v$PULUMI_VERSION" ] || build_pulumi
    install_sdk_files
    install_language_host
    cached_cli_is_complete || die "the Pulumi CLI in $PULUMI_ROOT/bin is still incomplete after the build"
    say "Pulumi CLI v$PULUMI_VERSION ready in $PULUMI_ROOT/bin ($((SECONDS - started)) s)"
  fi
  refresh_stand_in
  link_into_venv
  echo "$PULUMI_ROOT" > "$VENV/pulumi-root"
}

link_into_venv() {
  # `source .venv/bin/activate` then puts the built CLI and its helpers on PATH.
  local f
  for f in pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python circlecost_langhost.py; do
    [ -e "$PULUMI_ROOT/bin/$f" ] && ln -sfn "$PULUMI_ROOT/bin/$f" "$VENV/bin/$f"
  done
  return 0
}

find_postgres_bin() {
  # The newest folder holding initdb beside pg_ctl and postgres: Debian's versioned folders
  # first, then the initdb on PATH (symlinks resolved).
  local dir found
  while IFS= read -r dir; do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"; return 0
    fi
  done < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
  found=$(command -v initdb 2>/dev/null) || return 1
  dir=$(dirname "$(readlink -f "$found")")
  [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ] || return 1
  echo "$dir"
}

apt_install_postgresql() {
  # Quiet unless it fails; `apt-get update` only when the package lists are stale or missing.
  local log
  log=$(mktemp)
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >"$log" 2>&1; then
    say "apt-get install postgresql failed; running apt-get update and trying once more"
    if ! { DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      rm -f "$log"
      return 1
    fi
  fi
  rm -f "$log"
}

ensure_postgres() {
  local bin=""
  bin=$(find_postgres_bin) || bin=""
  if [ -z "$bin" ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "no PostgreSQL server found; installing the Debian package postgresql (apt-get, once)"
    if apt_install_postgresql; then
      bin=$(find_postgres_bin) || bin=""
    else
      say "warning: apt-get install postgresql failed; see the apt-get output above"
    fi
  fi
  if [ -z "$bin" ]; then
    rm -f "$VENV/postgres-bin"
    say "warning: no PostgreSQL server (initdb, pg_ctl, postgres) in /usr/lib/postgresql/*/bin or on PATH. The shared-store tests need one and fail without it; everything else works. Install the Debian package postgresql (apt-get install postgresql) or your system's PostgreSQL server package, then run make bootstrap again"
    return 0
  fi
  if [ "$(id -u)" -eq 0 ] && ! id -u postgres >/dev/null 2>&1; then
    say "warning: running as root but there is no \`postgres\` user: initdb refuses to run as root, so the shared-store tests will fail (the Debian package postgresql creates that user)"
  fi
  echo "$bin" > "$VENV/postgres-bin"
  say "using the PostgreSQL server binaries in $bin for the shared-store tests"
}

ensure_venv
ensure_pulumi
# Only the shared-store tests need a PostgreSQL server of their own.
if [ "$DEV_TOOLS" != 0 ]; then ensure_postgres; fi
