"""`provider.*`, the module names before circlecost 0.2, stand for `circlecost.*` — unless
another `provider` is on the path (PyPI's, or the `provider.py` of a user's Pulumi program)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run(code: str, cwd: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_the_old_names_are_the_very_circlecost_modules(tmp_path: Path) -> None:
    code = (
        "import pickle, provider.resources, circlecost.resources as new\n"
        "print(provider.resources is new, provider.resources.__name__)\n"
        # As an earlier release pickled it (protocol 0 spells the module name as text).
        "old = pickle.dumps(new.Integration, protocol=0).replace(b'circlecost.', b'provider.')\n"
        "print(pickle.loads(old) is new.Integration)\n"
    )
    assert run(code, tmp_path).splitlines() == ["True circlecost.resources", "True"]
    assert "provider.resources" in run(
        "import pickle, circlecost.resources as new\n"
        "print(pickle.dumps(new.Integration, protocol=0).replace(b'circlecost.', b'provider.'))",
        tmp_path,
    )


def test_a_users_own_provider_module_wins(tmp_path: Path) -> None:
    (tmp_path / "provider.py").write_text("WHO = 'the user'\n")
    assert run("import provider; print(provider.WHO)", tmp_path) == "the user"


def test_the_source_folder_on_the_path_is_not_loaded_twice() -> None:
    repo = Path(__file__).resolve().parents[2]
    code = (
        "import sys; sys.path.insert(0, '.')\n"
        "import provider.service, circlecost.service\n"
        "print(provider.service is circlecost.service)\n"
    )
    assert run(code, repo) == "True"
