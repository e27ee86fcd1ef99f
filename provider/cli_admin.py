"""`circlecost store`, `circlecost access`, `circlecost audit` and `circlecost vtags`: the
commands that look after the store itself, who may change it, what was changed, and the rules
that tag its costs."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import click

from circlecost import service
from circlecost.cli_context import Context, existing_store, pass_context
from circlecost.models import UNTAGGED
from circlecost.store import VirtualTag

# --- the store itself -----------------------------------------------------------------------------


@click.group("store")
def store_group() -> None:
    """Create, copy and maintain the cost store (a DuckDB file or a shared DuckLake store)."""


DATA_PATH_OPTION = click.option(
    "--data-path",
    help="Where a shared store keeps its Parquet data: a directory or s3://bucket/prefix/ "
    "(default: CIRCLECOST_STORE_DATA_PATH).",
)


@store_group.command("init")
@click.option("--owner", required=True, help="The store's first Organization Owner.")
@DATA_PATH_OPTION
@pass_context
def store_init(context: Context, owner: str, data_path: str | None) -> None:
    """Create the store with OWNER as its first Organization Owner (once per store).

    A shared store never makes an unknown actor its owner, so it is created this way, by a
    person, before CI uses it. Running it again on an existing store changes nothing.

    \b
    Example:
      export PGPASSWORD=...    # never in the connection string
      circlecost --store 'ducklake:postgres:host=db.internal dbname=circlecost user=ci' \\
        store init --owner ana --data-path s3://team-costs/circlecost/
    """
    store = service.store_at(
        context.store_setting, data_path or context.data_path, context.settings
    )
    created = store.initialize(owner)
    verb = "created" if created else "already exists:"
    click.echo(f"{verb} {store.name} (store {store.identity()})")
    if created:
        click.echo(f"{owner} is its Organization Owner")


@store_group.command("copy")
@click.option("--from", "source", required=True, help="The embedded store (file) to copy.")
@click.option("--to", "target", help="The store to copy into (default: --store).")
@DATA_PATH_OPTION
@pass_context
def store_copy(context: Context, source: str, target: str | None, data_path: str | None) -> None:
    """Copy every table of an embedded store into a new, empty store (e.g. a shared one).

    Row counts are checked before the copy commits; the copy keeps the store's identity, so
    Pulumi stacks that used the file go on working against the new store.

    \b
    Example:
      circlecost store copy --from .circlecost/costs.duckdb \\
        --to 'ducklake:postgres:host=db.internal dbname=circlecost user=ci' \\
        --data-path s3://team-costs/circlecost/
    """
    into = service.store_at(
        target or context.store_setting, data_path or context.data_path, context.settings
    )
    counts = into.copy_from(service.store_at(source, None, context.settings))
    for table, rows in counts.items():
        click.echo(f"{table}\t{rows}")
    click.echo(f"copied {source} into {into.name}")


@store_group.command("maintain")
@click.option(
    "--keep-days",
    type=click.IntRange(0, 3650),
    default=7,
    show_default=True,
    help="Days of old snapshots (time travel) to keep; 0 frees everything unused.",
)
@pass_context
def store_maintain(context: Context, keep_days: int) -> None:
    """Expire old snapshots and delete the data files nothing uses any more.

    The daily refresh runs this for a shared store; run it by hand after large purges.
    """
    store = existing_store(context.settings)
    done = store.maintain(timedelta(days=keep_days))
    click.echo(
        f"{store.name}: {done['snapshots_expired']} snapshots expired, "
        f"{done['files_removed']} files removed"
    )


@store_group.command("info")
@pass_context
def store_info(context: Context) -> None:
    """Which store this is: its engine, identity and schema version."""
    store = existing_store(context.settings)
    click.echo(f"store\t{store.name}")
    click.echo(f"engine\t{'shared (DuckLake)' if store.shared else 'embedded (DuckDB file)'}")
    click.echo(f"identity\t{store.identity()}")
    click.echo(f"schema\t{store.schema_version()}")


# --- access and audit ---------------------------------------------------------------------------


@click.group()
def access() -> None:
    """Roles: Organization Owner, Integration Owner, Editor, Viewer."""


@access.command("grant")
@click.argument("principal")
@click.argument("role")
@pass_context
def access_grant(context: Context, principal: str, role: str) -> None:
    """Give PRINCIPAL a ROLE (needs Organization Owner).

    \b
    Example:
      circlecost --actor ana access grant bob 'Integration Owner'
    """
    service.grant(context.settings, principal, role)
    click.echo(f"{principal} is now {role}")


@access.command("revoke")
@click.argument("principal")
@pass_context
def access_revoke(context: Context, principal: str) -> None:
    """Take PRINCIPAL's role away (needs Organization Owner).

    \b
    Example:
      circlecost --actor ana access revoke bob
    """
    service.revoke(context.settings, principal)
    click.echo(f"{principal} holds no role now")


@access.command("list")
@pass_context
def access_list(context: Context) -> None:
    """Who holds which role."""
    for principal in existing_store(context.settings).list_principals():
        click.echo(
            f"{principal.actor}\t{principal.role}\t(granted by {principal.granted_by or '-'} "
            f"at {principal.granted_at:%Y-%m-%d %H:%M})"
        )


@click.command()
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_context
def audit(context: Context, limit: int, fmt: str) -> None:
    """The audit log, newest first: who changed what, when (never secret values).

    \b
    Example:
      circlecost audit --limit 20
    """
    entries = existing_store(context.settings).list_audit(limit=limit)
    if fmt == "json":
        click.echo(json.dumps([entry.__dict__ for entry in entries], indent=2, default=str))
        return
    for entry in entries:
        click.echo(
            f"{entry.at:%Y-%m-%d %H:%M:%S} {entry.actor} {entry.action} {entry.object_type} "
            f"{entry.object_id} {json.dumps(entry.changes, default=str, ensure_ascii=False)}"
        )


# --- virtual tags -------------------------------------------------------------------------------


@click.group("vtags")
def vtags() -> None:
    """Virtual tags: rules that give each cost a team, product or cost centre (declared as
    VirtualTag resources or in `circlecost:virtualTags`)."""


@vtags.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@pass_context
def vtags_list(context: Context, fmt: str) -> None:
    """Each virtual tag with its rules, in the order they are tried (the first match wins).

    \b
    Example:
      circlecost vtags list
      circlecost report --period last_month --group-by vtag:team
    """
    tags = existing_store(context.settings).list_virtual_tags()
    if fmt == "json":
        click.echo(json.dumps([virtual_tag_dict(tag) for tag in tags], indent=2, default=str))
        return
    if not tags:
        click.echo("no virtual tags yet")
    for tag in tags:
        click.echo(f"vtag:{tag.key}" + (f" — {tag.description}" if tag.description else ""))
        for number, rule in enumerate(tag.rules, start=1):
            click.echo(f"  {number}. {rule.value}: {rule.filter}")
        click.echo(f"  otherwise: {tag.default_value or UNTAGGED}")


def virtual_tag_dict(tag: VirtualTag) -> dict[str, Any]:
    return {
        "id": tag.id,
        "key": tag.key,
        "rules": [{"value": rule.value, "filter": rule.filter} for rule in tag.rules],
        "default_value": tag.default_value,
        "description": tag.description,
        "updated_at": tag.updated_at,
    }
