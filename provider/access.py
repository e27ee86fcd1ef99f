"""Role look-ups for the policy pack: read only, and honest about a store that is not there yet."""

from __future__ import annotations

from pathlib import Path

from provider.service import DEFAULT_STORE
from provider.store import Store


def roles_for_policy(store_path: str | None, actor: str) -> list[str] | None:
    """The actor's roles, or None when the store has no principals yet (its first actor will
    become the Organization Owner). Raises when the store exists but cannot be read."""
    path = Path(store_path) if store_path else DEFAULT_STORE
    if not path.exists():
        return None
    store = Store(path, writer_kind="pulumi preview (policy pack)")
    if not store.list_principals():
        return None
    role = store.get_role(actor)
    return [role] if role else []
