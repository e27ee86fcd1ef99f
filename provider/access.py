"""Role look-ups for the policy pack: read only, and honest about a store that is not there yet."""

from __future__ import annotations

from circlecost.engine import SharedStore, parse_location
from circlecost.settings import DEFAULT_STORE
from circlecost.store import Store


def roles_for_policy(
    store_location: str | None, actor: str, data_path: str | None = None
) -> list[str] | None:
    """The actor's roles, or None when an embedded store has no principals yet (its first actor
    will become the Organization Owner). A shared store never adopts its first actor: there an
    unknown actor holds no role, and a store not yet created is an error that says how to create
    it. Raises when the store exists but cannot be read."""
    location = parse_location(store_location, data_path) if store_location else DEFAULT_STORE
    store = Store(location, writer_kind="pulumi preview (policy pack)")
    if isinstance(location, SharedStore):
        if not store.exists():
            raise store.not_initialised()
    elif not location.exists() or not store.list_principals():
        return None
    role = store.get_role(actor)
    return [role] if role else []
