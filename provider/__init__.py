"""circlecost: a self-hosted, declarative CircleCI cost integration.

A Pulumi program declares its integrations with the names at the top of the package:

    from circlecost import Integration, Workspace, WorkspaceBinding
    from circlecost import AlertChannel, Budget, VirtualTag  # chargeback

Nothing happens at import time: the Pulumi dynamic providers are pickled into state and
re-imported in other processes, and the CLI and the policy pack import only what they use, so
each public name is loaded from its module on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from circlecost.errors import CirclecostError
    from circlecost.resources import (
        AlertChannel,
        Budget,
        Integration,
        VirtualTag,
        Workspace,
        WorkspaceBinding,
    )
    from circlecost.settings import Settings

__version__ = "0.1.0"

# Each public name and the module that defines it.
_PUBLIC = {
    "Integration": "circlecost.resources",
    "Workspace": "circlecost.resources",
    "WorkspaceBinding": "circlecost.resources",
    "VirtualTag": "circlecost.resources",
    "Budget": "circlecost.resources",
    "AlertChannel": "circlecost.resources",
    "Settings": "circlecost.settings",
    "CirclecostError": "circlecost.errors",
}

__all__ = [
    "AlertChannel",
    "Budget",
    "CirclecostError",
    "Integration",
    "Settings",
    "VirtualTag",
    "Workspace",
    "WorkspaceBinding",
]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'circlecost' has no attribute {name!r}")
    return getattr(import_module(module), name)
