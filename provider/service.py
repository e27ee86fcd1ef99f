"""circlecost's use cases, shared by the Pulumi resources and the CLI.

Each function takes `Settings` (where the store is, which CircleCI to call, who acts) and typed
inputs, and returns plain values. Nothing here knows about Pulumi. Every change is checked
against the actor's role and written to the audit log without secret values.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypedDict

from circlecost import reports, virtual_tags
from circlecost.circleci import (
    AccessDeniedError,
    CircleCIError,
    InvalidTokenError,
    NotFoundError,
)
from circlecost.engine import parse_location
from circlecost.errors import CirclecostError
from circlecost.importer import (
    Importer,
    ImportReport,
    ImportStoppedError,
    TokenRejectedError,
)
from circlecost.models import IntegrationInputs, VirtualTagInputs, WorkspaceInputs
from circlecost.settings import Settings
from circlecost.store import (
    Integration,
    Store,
    StoreConflictError,
    StoreOutdatedError,
    TagRule,
    VirtualTag,
)
from circlecost.vocabulary import (
    CHARGEBACK_CHANGERS,
    INTEGRATION_CHANGERS,
    Role,
    Status,
    token_fingerprint,
)
from circlecost.windows import backfill_windows, earliest_start, refresh_windows

log = logging.getLogger("circlecost.service")

# Hears each import report, with the organization's name, while someone waits for the import.
ImportWatch = Callable[[str, ImportReport], None]

# The longest Retry-After the client waits out inside one request during an import; longer
# waits are the engine's, which reports them and keeps to its time budget.
CLIENT_WAIT_AT_MOST = timedelta(minutes=1)


# --- roles --------------------------------------------------------------------------------------


def require_role(store: Store, settings: Settings, allowed: tuple[str, ...], action: str) -> str:
    """The actor, once it is known to hold one of `allowed`; a new store adopts its first actor."""
    actor = settings.actor
    if not actor:
        raise CirclecostError(
            f"cannot {action}: no actor is set",
            hint="run `pulumi config set circlecost:actor <you>` or set CIRCLECOST_ACTOR",
        )
    if store.ensure_first_owner(actor):
        return actor
    role = store.get_role(actor)
    if role not in allowed:
        held = f"holds {role}" if role else "holds no role"
        raise CirclecostError(
            f"cannot {action}: '{actor}' {held}, but this needs {' or '.join(allowed)}",
            hint="ask an Organization Owner to run "
            f"`circlecost access grant {actor} '{allowed[-1]}'`",
        )
    return actor


# --- integrations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenCheck:
    user_login: str
    organization_name: str
    fingerprint: str


def check_token(settings: Settings, token: str, org_id: str) -> TokenCheck:
    """Validates the token with CircleCI (`GET /me`) and looks up the organization's name."""
    with settings.client(token) as client:
        try:
            user = client.get_current_user()
        except InvalidTokenError:
            raise TokenRejectedError(
                "token: CircleCI rejected the token (401): it is invalid, expired, or not a "
                "personal API token",
                hint="create a new personal API token in CircleCI (User Settings → Personal API "
                "Tokens), "
                "store it with `pulumi config set --secret`, then run `pulumi up`",
            ) from None
        except CircleCIError as err:
            raise CirclecostError(
                f"token: could not validate the token with CircleCI: {err}"
            ) from None
        try:
            org = client.get_organization(org_id)
        except (NotFoundError, AccessDeniedError):
            raise CirclecostError(
                f"organization_id: CircleCI has no organization {org_id} that the token's user "
                "can see",
                hint="copy the id from CircleCI Organization Settings → Overview, and use a token "
                "of one of its admins",
            ) from None
        except CircleCIError as err:
            raise CirclecostError(
                f"organization_id: could not look up organization {org_id}: {err}"
            ) from None
    return TokenCheck(user.login, org.name, token_fingerprint(token))


def create_integration(
    settings: Settings,
    inputs: IntegrationInputs,
    *,
    watch: ImportWatch | None = None,
    stack: str | None = None,
) -> tuple[str, IntegrationOutputs]:
    """Records the integration, then imports until Stable or the create timeout passes.

    A failure before the first export is accepted (bad token, not an admin, duplicate) leaves
    nothing behind in the store. A refused token raises `ImportStoppedError`
    (`TokenRejectedError` for a 401), so that callers can tell the person what to do next.
    `stack` names the Pulumi stack that creates it: the same stack asking again, after a create
    was cut off, continues it.
    """
    token = inputs.token.get_secret_value()
    store = settings.store()
    actor = require_role(store, settings, INTEGRATION_CHANGERS, "create an integration")
    checked = check_token(settings, token, inputs.organization_id)
    integration_id, action = place_integration(store, settings, inputs, checked, stack)
    # The backfill counts as the first refresh, dated on the same clock that `refresh_due`
    # reads (the store's own timestamps follow the machine's clock, not circlecost's).
    store.update_integration(integration_id, last_refresh_at=settings.clock())
    # Audited before the import runs: a process killed or interrupted mid-import leaves an
    # integration in the store, and the log must say who created it.
    store.record_audit(actor, action, "integration", integration_id, audit_fields(None, inputs))
    try:
        run_import(settings, integration_id, token, settings.create_timeout, watch)
    except ImportStoppedError:
        if action != "adopt":  # never recorded in Pulumi's state: leave nothing behind
            store.purge_integration(integration_id, actor=actor)
        raise
    return integration_id, integration_outputs(store, integration_id)


def resumes_own_create(existing: Integration, checked: TokenCheck, stack: str | None) -> bool:
    """A create of this stack was cut off (the CLI killed mid-import, a CI job cancelled):
    Pulumi never recorded the resource and asks for it again. The same stack, with a token of
    the same fingerprint, continues that integration; anyone else must adopt it explicitly."""
    return (
        stack is not None
        and existing.created_by_stack == stack
        and existing.token_fingerprint == checked.fingerprint
    )


def place_integration(
    store: Store,
    settings: Settings,
    inputs: IntegrationInputs,
    checked: TokenCheck,
    stack: str | None = None,
) -> tuple[str, str]:
    """Writes the new (or adopted, or resumed) integration with its prices and backfill
    windows; says which of "create", "adopt" and "resume" it did."""
    shared = store.find_integration_by_fingerprint(checked.fingerprint)
    existing = store.get_integration_by_org(inputs.organization_id)
    if shared is not None and (existing is None or shared.id != existing.id):
        raise CirclecostError(
            f"token: this token ({checked.fingerprint}) is already used by integration "
            f"{shared.id} ({shared.organization_name})",
            hint="give each integration its own dedicated CircleCI personal API token",
        )
    resumed = existing is not None and resumes_own_create(existing, checked, stack)
    if existing is not None and not inputs.adopt and not resumed:
        raise CirclecostError(
            f"organization_id: organization {inputs.organization_id} "
            f"({existing.organization_name}) already has integration {existing.id}",
            hint="one integration per organization: remove the other one, or set adopt: true "
            "to take over the existing integration and its data",
        )
    now = settings.clock()
    details: dict[str, Any] = {
        "organization_name": checked.organization_name,
        "description": inputs.description,
        "token_user": checked.user_login,
        "token_expires_on": inputs.token_expires_on,
        "backfill_months": inputs.backfill_months,
    }
    if existing is not None:
        integration_id = existing.id
        store.update_integration(integration_id, token_fingerprint=checked.fingerprint, **details)
        store.set_prices(integration_id, inputs.price_per_credit, price_schedule(inputs))
    else:
        integration_id = store.insert_integration(
            inputs.organization_id,
            checked.fingerprint,
            token_rotated_at=now,
            base_price=inputs.price_per_credit,
            price_schedule=price_schedule(inputs),
            created_by_stack=stack,
            **details,
        ).id
    try:
        store.plan_windows(integration_id, backfill_windows(now, inputs.backfill_months))
    except CirclecostError:
        if existing is None:
            store.purge_integration(integration_id)
        raise
    if existing is None:
        return integration_id, "create"
    return integration_id, "resume" if resumed else "adopt"


def price_schedule(inputs: IntegrationInputs) -> list[tuple[date, Decimal]]:
    return [(entry.effective_from, entry.price_per_credit) for entry in inputs.price_schedule]


def run_import(
    settings: Settings,
    integration_id: str,
    token: str,
    budget: timedelta,
    watch: ImportWatch | None = None,
) -> ImportReport:
    """Drives the import engine until done or `budget` has passed. The store opens a short
    connection per step, so other processes can use it while the engine waits."""
    store = settings.store()
    record = store.get_integration(integration_id)
    if record is None:
        raise CirclecostError(
            f"integration {integration_id} is not in the store {settings.store_name}"
        )
    shown_name = record.organization_name or record.organization_id
    with settings.client(token, wait_at_most=min(budget, CLIENT_WAIT_AT_MOST)) as client:
        importer = Importer(
            store,
            client,
            integration_id,
            record.organization_id,
            settings=settings.imports,
            clock=settings.clock,
            sleep=settings.sleep,
            on_report=partial(watch, shown_name) if watch else None,
        )
        return importer.run(settings.clock() + budget)


def update_integration(
    settings: Settings, integration_id: str, old: IntegrationInputs, new: IntegrationInputs
) -> IntegrationOutputs:
    """Applies changed inputs: a new token is validated first, so a bad one changes nothing."""
    token = new.token.get_secret_value()
    store = settings.store()
    actor = require_role(store, settings, INTEGRATION_CHANGERS, "update an integration")
    if store.get_integration(integration_id) is None:
        raise CirclecostError(
            f"integration {integration_id} is not in the store {settings.store_name}",
            hint="run `pulumi refresh` so that Pulumi forgets it, then `pulumi up` to create it "
            "again",
        )
    changes: dict[str, Any] = {
        "description": new.description,
        "token_expires_on": new.token_expires_on,
        "backfill_months": new.backfill_months,
    }
    if old.token.get_secret_value() != token:
        checked = check_token(settings, token, new.organization_id)
        shared = store.find_integration_by_fingerprint(checked.fingerprint)
        if shared is not None and shared.id != integration_id:
            raise CirclecostError(
                f"token: this token ({checked.fingerprint}) is already used by integration "
                f"{shared.id}",
                hint="give each integration its own dedicated CircleCI personal API token",
            )
        changes.update(
            token_fingerprint=checked.fingerprint,
            token_user=checked.user_login,
            token_rotated_at=settings.clock(),
            organization_name=checked.organization_name,
        )
    store.update_integration(integration_id, **changes)
    store.set_prices(integration_id, new.price_per_credit, price_schedule(new))
    if new.backfill_months > old.backfill_months:
        store.plan_windows(integration_id, backfill_windows(settings.clock(), new.backfill_months))
    store.record_audit(actor, "update", "integration", integration_id, audit_fields(old, new))
    continue_import(settings, integration_id, token)
    return integration_outputs(store, integration_id)


def continue_import(
    settings: Settings, integration_id: str, token: str, watch: ImportWatch | None = None
) -> None:
    """Runs the import while it is unfinished; a refused token turns the status to Error.

    Someone who watches waits for the outcome, so a refused token also raises `ImportStoppedError`.
    """
    try:
        run_import(settings, integration_id, token, settings.create_timeout, watch)
    except ImportStoppedError:  # the engine wrote status Error and the reason
        if watch is not None:
            raise


def refresh_integration(
    settings: Settings, integration_id: str, token: str, watch: ImportWatch | None = None
) -> None:
    """The daily refresh: re-import the months holding the trailing days, and newer ones, and
    retry the windows that failed for good (`sync` is what a Warning status tells people to run).
    """
    store = settings.store()
    now = settings.clock()
    through = store.integration_summary(integration_id)["imported_through"]
    failed = [
        planned.window
        for planned in store.list_windows(integration_id)
        if planned.state == "failed" and planned.window.start >= earliest_start(now)
    ]
    for window in [*failed, *refresh_windows(now, through)]:
        store.reopen_window(integration_id, window)
    continue_import(settings, integration_id, token, watch)
    store.update_integration(integration_id, last_refresh_at=settings.clock())
    if store.shared is not None:
        maintain_after_refresh(store)


def maintain_after_refresh(store: Store) -> None:
    """A shared store keeps every replaced window's old Parquet files until they are expired:
    the daily refresh does it. Losing the race to another runner's maintenance is no failure."""
    try:
        done = store.maintain()
    except CirclecostError as err:
        log.warning("the store's maintenance was skipped: %s", err)
        return
    log.info("store maintenance: %s", done)


def read_integration(
    settings: Settings, integration_id: str, token: str | None
) -> IntegrationOutputs | None:
    """Status and totals; runs the daily refresh when the data is older than the interval."""
    store = settings.store()
    record = store.get_integration(integration_id)
    if record is None:
        return None
    if token and record.status == Status.IMPORTING:
        continue_import(settings, integration_id, token)  # resume the ledger's jobs first
    elif token and refresh_due(record, settings):
        refresh_integration(settings, integration_id, token)
    return integration_outputs(store, integration_id)


def refresh_due(record: Integration, settings: Settings) -> bool:
    last = record.last_refresh_at or record.created_at
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    return bool(settings.clock() - last >= settings.refresh_interval)


def import_unfinished(settings: Settings, integration_id: str) -> bool:
    if not settings.store_exists():
        return False
    record = settings.reader().get_integration(integration_id)
    return record is not None and record.status == Status.IMPORTING


def delete_integration(settings: Settings, integration_id: str) -> None:
    """Purges every cost row, export job, price and binding of the integration at once."""
    store = settings.store()
    actor = require_role(store, settings, INTEGRATION_CHANGERS, "delete an integration")
    if store.get_integration(integration_id) is not None:
        store.purge_integration(integration_id, actor=actor)


def sync_integrations(
    settings: Settings, token: str, *, watch: ImportWatch | None = None
) -> IntegrationOutputs:
    """`circlecost sync`: refresh the integration that uses this token.

    With `watch`, a refused token raises `ImportStoppedError` instead of only writing status Error.
    """
    store = settings.store()
    require_role(store, settings, (*INTEGRATION_CHANGERS, Role.EDITOR), "sync integrations")
    record = store.find_integration_by_fingerprint(token_fingerprint(token))
    if record is None:
        raise CirclecostError(
            "no integration in the store uses the token in CIRCLECI_TOKEN",
            hint="set CIRCLECI_TOKEN to the token of an integration "
            "(see `circlecost integrations list`)",
        )
    if record.status == Status.IMPORTING:
        continue_import(settings, record.id, token, watch)  # resume from the ledger, no new jobs
    else:
        refresh_integration(settings, record.id, token, watch)
    return integration_outputs(store, record.id)


def store_at(setting: str | None, data_path: str | None, settings: Settings) -> Store:
    """The store named by a setting (default: this run's), not created or migrated."""
    location = parse_location(setting, data_path) if setting else settings.store_location
    return settings.store_at(location)


# --- the store a resource lives in ----------------------------------------------------------------


class StoreMismatchError(CirclecostError):
    """A run looks for a resource in a store other than the one it was created in."""


def store_identity(settings: Settings) -> str:
    """The identity of this run's store (creating and migrating the store if needed)."""
    return settings.store().identity()


def require_recorded_store(settings: Settings, recorded: Any, what: str) -> None:
    """Refuses to go on when `what` was created in another store than this run's.

    Without this a fresh CI runner with an empty store, or a typo in `circlecost:store`, made
    `pulumi refresh` find nothing and drop every resource from the Pulumi state. State written
    before stores had an identity records none: it is taken as it is and recorded from now on.
    """
    if not isinstance(recorded, str) or not recorded:
        return
    path = settings.store_name
    current = store_identity(settings) if settings.store_exists() else None
    if current == recorded:
        return
    uses = f"store {current} ({path})" if current else f"{path}, which does not exist"
    raise StoreMismatchError(
        f"{what} lives in store {recorded}; this run uses {uses}. "
        "Nothing was changed in the Pulumi state or in either store",
        hint="point `circlecost:store` (or CIRCLECOST_STORE) at the store this stack was "
        "created with (on CI runners, the team's shared store); if that store is gone for good, "
        "`pulumi state delete <urn>` removes the resource from the state",
    )


class IntegrationOutputs(TypedDict):
    """An Integration's outputs: what Pulumi state, `integrations list --format json` and
    policies read (timestamps ISO 8601, money rounded to cents)."""

    organization_name: str | None
    token_user: str | None
    token_fingerprint: str
    token_rotated_at: str | None
    status: str
    status_detail: str
    imported_from: str | None
    imported_through: str | None
    line_items: int
    total_credits: float
    total_cost_usd: float
    store_id: str


def integration_outputs(store: Store, integration_id: str) -> IntegrationOutputs:
    record = store.get_integration(integration_id)
    if record is None:
        raise CirclecostError(f"integration {integration_id} is not in the store {store.name}")
    summary = store.integration_summary(integration_id)
    return IntegrationOutputs(
        organization_name=record.organization_name,
        token_user=record.token_user,
        token_fingerprint=record.token_fingerprint,
        token_rotated_at=iso(record.token_rotated_at),
        status=record.status,
        status_detail=record.status_detail,
        imported_from=iso(summary["imported_from"]),
        imported_through=iso(summary["imported_through"]),
        line_items=int(summary["line_items"]),
        total_credits=float(summary["total_credits"]),
        total_cost_usd=cents(Decimal(summary["total_cost_usd"])),
        store_id=store.identity(),
    )


def iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


AUDITED_INPUTS = (
    "organization_id",
    "description",
    "price_per_credit",
    "price_schedule",
    "token_expires_on",
    "backfill_months",
)


def audit_value(value: Any) -> Any:
    """A JSON-friendly rendering of an input value for the audit log."""
    if value is None:
        return None
    if isinstance(value, tuple):  # the price schedule
        return [
            {
                "effective_from": str(entry.effective_from),
                "price_per_credit": str(entry.price_per_credit),
            }
            for entry in value
        ]
    return str(value)


def audit_fields(old: IntegrationInputs | None, new: IntegrationInputs) -> dict[str, Any]:
    """The changed inputs, never the token itself (only its fingerprint)."""
    fields: dict[str, Any] = {}
    for name in AUDITED_INPUTS:
        before = getattr(old, name) if old else None
        after = getattr(new, name)
        if before != after:
            fields[name] = [audit_value(before), audit_value(after)]
    new_token = new.token.get_secret_value()
    if old is None or old.token.get_secret_value() != new_token:
        fields["token_fingerprint"] = [
            None if old is None else token_fingerprint(old.token.get_secret_value()),
            token_fingerprint(new_token),
        ]
    return fields


# --- workspaces and bindings -------------------------------------------------------------------


def create_workspace(settings: Settings, inputs: WorkspaceInputs) -> str:
    store = settings.store()
    actor = require_role(store, settings, (Role.ORGANIZATION_OWNER,), "create a workspace")
    try:
        return store.create_workspace(inputs.name, inputs.description, actor=actor).id
    except StoreConflictError as conflict:
        raise CirclecostError(
            f"name: {conflict.message}", hint="workspace names are unique"
        ) from None


def update_workspace(settings: Settings, workspace_id: str, inputs: WorkspaceInputs) -> None:
    store = settings.store()
    actor = require_role(store, settings, (Role.ORGANIZATION_OWNER,), "update a workspace")
    other = store.get_workspace_by_name(inputs.name)
    if other is not None and other.id != workspace_id:
        raise CirclecostError(f"name: a workspace named '{inputs.name}' already exists")
    store.update_workspace(
        workspace_id, name=inputs.name, description=inputs.description, actor=actor
    )


def delete_workspace(settings: Settings, workspace_id: str) -> None:
    store = settings.store()
    actor = require_role(store, settings, (Role.ORGANIZATION_OWNER,), "delete a workspace")
    if store.get_workspace(workspace_id) is not None:
        store.delete_workspace(workspace_id, actor=actor)


def create_binding(settings: Settings, workspace_id: str, integration_id: str) -> str:
    """Binds once the integration is Stable, waiting up to the binding timeout."""
    store = settings.store()
    actor = require_role(store, settings, INTEGRATION_CHANGERS, "bind an integration")
    if store.get_workspace(workspace_id) is None:
        raise CirclecostError(f"workspace_id: no workspace {workspace_id} in the store")
    deadline = settings.clock() + settings.binding_timeout
    while True:
        record = store.get_integration(integration_id)
        if record is None:
            raise CirclecostError(f"integration_id: no integration {integration_id} in the store")
        if record.status in (Status.STABLE, Status.WARNING):
            store.bind(workspace_id, integration_id, actor=actor)
            return f"{workspace_id}/{integration_id}"
        if settings.clock() >= deadline:
            raise CirclecostError(
                f"integration_id: integration {integration_id} ({record.organization_name}) is "
                f"{record.status}, not Stable: {record.status_detail}",
                hint="its costs become visible once the import is Stable; run `pulumi up` again "
                "later (the integration continues its import then)",
            )
        settings.sleep(min(5.0, max(0.0, (deadline - settings.clock()).total_seconds())))


def delete_binding(settings: Settings, workspace_id: str, integration_id: str) -> None:
    store = settings.store()
    actor = require_role(store, settings, INTEGRATION_CHANGERS, "unbind an integration")
    store.unbind(workspace_id, integration_id, actor=actor)


def workspace_integration_ids(settings: Settings, name: str) -> list[str]:
    store = settings.reader()
    workspace = store.get_workspace_by_name(name)
    if workspace is None:
        known = ", ".join(w.name for w in store.list_workspaces()) or "none yet"
        raise CirclecostError(
            f"--workspace: no workspace named '{name}'", hint=f"workspaces: {known}"
        )
    return store.workspace_integration_ids(workspace.id)


# --- access -------------------------------------------------------------------------------------


def grant(settings: Settings, principal: str, role: str) -> None:
    if role not in set(Role):
        raise CirclecostError(f"role: '{role}' is not a role", hint=f"roles are: {', '.join(Role)}")
    store = settings.store()
    actor = require_role(store, settings, (Role.ORGANIZATION_OWNER,), "grant roles")
    store.grant_role(principal, role, granted_by=actor)


def revoke(settings: Settings, principal: str) -> None:
    store = settings.store()
    actor = require_role(store, settings, (Role.ORGANIZATION_OWNER,), "revoke roles")
    if not store.revoke_role(principal, revoked_by=actor):
        raise CirclecostError(f"'{principal}' holds no role", hint="see `circlecost access list`")


# --- virtual tags -------------------------------------------------------------------------------


def store_rules(inputs: VirtualTagInputs) -> list[TagRule]:
    return [TagRule(rule.value, rule.filter) for rule in inputs.rules]


@contextmanager
def conflict_on(field: str) -> Iterator[None]:
    """A store conflict (a name or key another record has) as an error on the input `field`."""
    try:
        yield
    except StoreConflictError as conflict:
        raise CirclecostError(f"{field}: {conflict.message}", hint=conflict.hint) from None


def create_virtual_tag(settings: Settings, inputs: VirtualTagInputs) -> str:
    store = settings.store()
    actor = require_role(store, settings, CHARGEBACK_CHANGERS, "create a virtual tag")
    rules = store_rules(inputs)
    with conflict_on("key"):
        tag = store.create_virtual_tag(
            inputs.key, rules, inputs.default_value, inputs.description, actor=actor
        )
    return tag.id


def update_virtual_tag(settings: Settings, tag_id: str, inputs: VirtualTagInputs) -> None:
    store = settings.store()
    actor = require_role(store, settings, CHARGEBACK_CHANGERS, "change a virtual tag")
    rules = store_rules(inputs)
    with conflict_on("key"):
        store.update_virtual_tag(
            tag_id, inputs.key, rules, inputs.default_value, inputs.description, actor=actor
        )


def delete_virtual_tag(settings: Settings, tag_id: str) -> None:
    store = settings.store()
    actor = require_role(store, settings, CHARGEBACK_CHANGERS, "delete a virtual tag")
    store.delete_virtual_tag(tag_id, actor=actor)


def virtual_tag_exists(settings: Settings, tag_id: str) -> bool:
    return settings.reader().get_virtual_tag(tag_id) is not None


class RuleEffect(TypedDict):
    """What a virtual tag's rules do to the costs in the store, for a reviewer: the cost of
    each value under the new rules and how much cost moves from one value to another compared
    with the old rules (nothing moves for a new tag). Amounts in USD, rounded to cents; names
    in snake_case like every output."""

    costs: str
    total_usd: float
    by_value: dict[str, float]
    moved_usd: float
    moves: list[dict[str, Any]]


def virtual_tag_effect(
    settings: Settings, old: VirtualTagInputs | None, new: VirtualTagInputs
) -> RuleEffect | None:
    """The effect of `new` (replacing `old`) on every cost imported so far; None when there is
    no store yet to look into."""
    if not settings.store_exists():
        return None
    try:
        return rule_effect(settings.reader(), old, new)
    except StoreOutdatedError:
        return None  # `pulumi up` upgrades the store; its preview shows no effect till then


def rule_effect(store: Store, old: VirtualTagInputs | None, new: VirtualTagInputs) -> RuleEffect:
    with store.reader() as connection:
        span = connection.execute(
            "SELECT min(usage_date), max(usage_date) FROM usage_daily"
        ).fetchone()
        if span is None or span[0] is None:
            return RuleEffect(
                costs="none imported yet", total_usd=0.0, by_value={}, moved_usd=0.0, moves=[]
            )
        period = reports.Period(span[0], span[1])
        after = virtual_tags.value_expression(as_tag(new))
        before = virtual_tags.value_expression(as_tag(old)) if old else after
        request = reports.ReportRequest(period, group_by=("vtag:before", "vtag:after"))
        result = reports.build_report(
            connection, request, virtual={"before": before, "after": after}
        )
    by_value: dict[str, Decimal] = {}
    moves: list[dict[str, Any]] = []
    moved = Decimal(0)
    for row in result.rows:
        by_value[row["vtag:after"]] = (
            by_value.get(row["vtag:after"], Decimal(0)) + row["amount_usd"]
        )
        if old is not None and row["vtag:before"] != row["vtag:after"]:
            moves.append(
                {
                    "from": row["vtag:before"],
                    "to": row["vtag:after"],
                    "amount_usd": cents(row["amount_usd"]),
                }
            )
            moved += row["amount_usd"]
    return RuleEffect(
        costs=f"all imported costs, {period.start} .. {period.end}",
        total_usd=cents(result.total["amount_usd"]),
        by_value={value: cents(amount) for value, amount in sorted(by_value.items())},
        moved_usd=cents(moved),
        moves=moves,
    )


def cents(amount: Decimal) -> float:
    """USD as outputs show it: rounded to cents."""
    return float(round(amount, 2))


# The times of a record made from inputs; the store writes the real ones.
UNSTORED = datetime.min.replace(tzinfo=UTC)


def as_tag(inputs: VirtualTagInputs) -> VirtualTag:
    """Inputs as the store's record, to compile rules that are not stored (yet)."""
    return VirtualTag(
        "", inputs.key, tuple(store_rules(inputs)), inputs.default_value, inputs.description,
        UNSTORED, UNSTORED,
    )  # fmt: skip
