"""circlecost's build backend: setuptools, plus one file at the top of every wheel.

`circlecost-legacy-names.pth` makes the module names of circlecost before 0.2 (`provider.*`)
resolve to the same `circlecost.*` modules (see provider/legacy_names.py), so that Pulumi state
written by an earlier version, which pickles `provider.resources`, still refreshes, updates and
destroys. setuptools has no option for a file beside the packages, so it is added here to the
regular and the editable wheel alike.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (the hooks this backend does not change)

PTH_NAME = "circlecost-legacy-names.pth"
PTH_LINE = b"import circlecost.legacy_names as _circlecost; _circlecost.install()\n"


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}\n"


def _add_pth(wheel: Path) -> None:
    """Writes the .pth into the wheel and its RECORD (the list pip checks and uninstalls by)."""
    with zipfile.ZipFile(wheel) as source:
        entries = [(info, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            if info.filename.endswith(".dist-info/RECORD"):
                data = data + _record_line(PTH_NAME, PTH_LINE).encode()
                target.writestr(PTH_NAME, PTH_LINE)
            target.writestr(info, data)


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    name = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    _add_pth(Path(wheel_directory) / name)
    return name


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    name = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    _add_pth(Path(wheel_directory) / name)
    return name
