"""Organizations as the emulator serves them, and ids derived from a seed."""

import hashlib
import uuid
from dataclasses import dataclass
from typing import Final

_SLUG_PREFIXES: Final = {"github": "gh", "bitbucket": "bb"}
_DEFAULT_ORGANIZATION_NAMES: Final = ("acme", "globex")


def seeded_uuid(*parts: object) -> str:
    """A version-4-shaped UUID that is a pure function of `parts`."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


@dataclass(frozen=True)
class Organization:
    """A CircleCI organization as the emulator serves it."""

    id: str
    name: str
    vcs_type: str = "github"

    @property
    def slug(self) -> str:
        # Organizations on CircleCI's own VCS integration are addressed as circleci/<id>.
        prefix = _SLUG_PREFIXES.get(self.vcs_type)
        return f"{prefix}/{self.name}" if prefix else f"circleci/{self.id}"

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "slug": self.slug}


def default_organizations(seed: int) -> list[Organization]:
    """The two demo organizations, with ids derived from the seed."""
    return [
        Organization(seeded_uuid(seed, "organization", n), n) for n in _DEFAULT_ORGANIZATION_NAMES
    ]
