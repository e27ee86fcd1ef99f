"""What every `circlecost` command shares: the settings its flags and environment give, and the
store it reads. Its own module so that command modules (cli, cli_admin) import it, not each other.
"""

from __future__ import annotations

import click

from circlecost.errors import CirclecostError
from circlecost.settings import Settings, read_sources
from circlecost.store import Store


class Context:
    def __init__(self, store: str | None, actor: str | None, debug: bool) -> None:
        self.debug = debug
        sources = read_sources(flags={"store": store, "actor": actor})
        self.store_setting = sources.store
        self.data_path = sources.store_data_path
        self.settings = sources.settings(
            "circlecost " + (click.get_current_context().invoked_subcommand or "")
        )


pass_context = click.make_pass_decorator(Context)


def existing_store(settings: Settings) -> Store:
    """The store for reading; a missing one is an error that says where the CLI looked."""
    store = settings.reader()
    if store.shared is None and not store.path.exists():
        raise CirclecostError(
            f"there is no store at {store.path}",
            hint="give the store's path with --store or CIRCLECOST_STORE; "
            "`circlecost integrations add` (or `pulumi up`) creates a new one",
        )
    if store.shared is not None and not store.exists():
        raise store.not_initialised()
    return store
