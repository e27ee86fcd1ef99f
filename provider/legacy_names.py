"""The module names of circlecost before 0.2, `provider.*`, as aliases of `circlecost.*`.

Pulumi pickles each dynamic provider into the stack's state by module name; state written by
an earlier circlecost names `provider.resources`. The first refresh, update or destroy after an
upgrade unpickles that provider in a fresh process, so `provider.resources` must import there:
this finder, installed by `circlecost-legacy-names.pth` at interpreter start, answers such an
import with the very `circlecost.resources` module (never a second copy of it). Once an update
has run, the state names `circlecost.resources` and the alias is no longer used.

A `provider` module of someone else's (PyPI's `provider`, or the `provider.py` beside a
user's Pulumi program) always wins: the alias only stands in when no other `provider` is found,
or when the one found is circlecost's own source folder (a checkout of this repository).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

LEGACY = "provider"
CURRENT = "circlecost"


def _source_folder() -> Path:
    return Path(__file__).resolve().parent


def _is_ours(spec: importlib.machinery.ModuleSpec | None) -> bool:
    """No other `provider` is importable, or the one found is this very source folder."""
    if spec is None:
        return True
    locations = list(spec.submodule_search_locations or [])
    if spec.origin and spec.origin not in ("namespace", "built-in"):
        locations.append(str(Path(spec.origin).parent))
    return any(Path(location).resolve() == _source_folder() for location in locations)


class LegacyNames(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `provider` and `provider.<x>` and loads them as `circlecost` and `circlecost.<x>`."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == LEGACY:
            others = [finder for finder in sys.meta_path if finder is not self]
            for finder in others:
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    return self._alias_spec(fullname) if _is_ours(spec) else None
            return self._alias_spec(fullname)
        if fullname.startswith(LEGACY + "."):
            parent = sys.modules.get(LEGACY)
            if parent is not None and parent is sys.modules.get(CURRENT):
                return self._alias_spec(fullname)
        return None

    def _alias_spec(self, fullname: str) -> importlib.machinery.ModuleSpec:
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname == LEGACY)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        # The import system keeps the module's own __name__ and __spec__ (it only fills in what
        # is missing), so the alias and the real name are one module object.
        return importlib.import_module(CURRENT + spec.name.removeprefix(LEGACY))

    def exec_module(self, module: ModuleType) -> None:
        """Already executed under its own name."""


def install() -> None:
    """Puts the finder first on `sys.meta_path`, once."""
    if not any(isinstance(finder, LegacyNames) for finder in sys.meta_path):
        sys.meta_path.insert(0, LegacyNames())
