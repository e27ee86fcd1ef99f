#!/usr/bin/env bash
# Prints a folder (outside the work tree) in which `circlecost` is spelt as installed: links to
# each entry of provider/, and policies/ as circlecost/policies. mypy reads the code through it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${CIRCLECOST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/circlecost}
LINKS=$CACHE/mypy-path/$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)
rm -rf "$LINKS"
mkdir -p "$LINKS/circlecost"
for entry in "$ROOT"/provider/*; do
  case $(basename "$entry") in __pycache__|*.egg-info) continue ;; esac
  ln -s "$entry" "$LINKS/circlecost/$(basename "$entry")"
done
ln -s "$ROOT/policies" "$LINKS/circlecost/policies"
echo "$LINKS"
