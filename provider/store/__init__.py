"""The cost store: everything circlecost knows, in one embedded DuckDB file or a shared DuckLake.

It holds integrations (never their tokens: only a fingerprint), dated prices, the import ledger
(windows and CircleCI export jobs), the raw usage rows of every export (all 48 columns, typed),
workspaces and bindings, virtual tags, budgets and alert channels, principals and roles, quota
counters and the audit log. Costs are the view `costs` over usage × the price in effect on each
line's date, so a price change re-prices everything at once and nothing is stored twice.

Every operation opens a short-lived connection and closes it (the Pulumi provider is pickled and
re-imported in other processes, so nothing may live on `self`). The schema has no constraints
(DuckLake has none); the rules live in this package's code, the same on both engines. Reports
read through `reader()`.

`Store` is composed here, from one mixin per aggregate over `StoreBase` (`connection`: settings,
connections, transactions, locks, retries after lost races, and the one place where DuckDB's
errors become the store's). `schema` holds the tables and migrations; `integrations` (with their
prices), `ledger` (windows, export jobs, claims, usage rows), `quota`, `workspaces` (with their
bindings), `virtual_tags`, `budgets` (with alert channels and deliveries), `access` (principals
and roles), `audit` and `costs` one aggregate each; `maintenance` keeps and moves a store. Below
them all: `errors`, `records`, and `common`, the helpers several of them use. Import from here
(a name imported `as` itself below is re-exported, as the single module had it); only the
counter `connection.conflict_retries` is read where it lives.
"""

from __future__ import annotations

from circlecost.csvload import LoadResult
from circlecost.engine import parse_location as parse_location
from circlecost.store.access import AccessMixin
from circlecost.store.audit import AuditMixin
from circlecost.store.budgets import BudgetsMixin
from circlecost.store.common import SECRET_KEYS as SECRET_KEYS
from circlecost.store.connection import ALL_GUARDS as ALL_GUARDS
from circlecost.store.connection import CONFLICT_BUDGET as CONFLICT_BUDGET
from circlecost.store.connection import CONFLICT_FIRST_DELAY as CONFLICT_FIRST_DELAY
from circlecost.store.connection import CONFLICT_MAX_DELAY as CONFLICT_MAX_DELAY
from circlecost.store.connection import GUARD_CATALOG as GUARD_CATALOG
from circlecost.store.connection import GUARD_LEDGER as GUARD_LEDGER
from circlecost.store.connection import GUARD_QUOTA as GUARD_QUOTA
from circlecost.store.connection import LOCK_RETRY_SECONDS as LOCK_RETRY_SECONDS
from circlecost.store.connection import StoreBase
from circlecost.store.costs import DIMENSIONS, CostsMixin
from circlecost.store.errors import InvalidValueError as InvalidValueError
from circlecost.store.errors import StoreConflictError as StoreConflictError
from circlecost.store.errors import StoreCorruptError as StoreCorruptError
from circlecost.store.errors import StoreError as StoreError
from circlecost.store.errors import StoreLockedError as StoreLockedError
from circlecost.store.errors import StoreNotFoundError as StoreNotFoundError
from circlecost.store.errors import StoreOutdatedError as StoreOutdatedError
from circlecost.store.integrations import BASE_PRICE_DATE as BASE_PRICE_DATE
from circlecost.store.integrations import INTEGRATION_FIELDS as INTEGRATION_FIELDS
from circlecost.store.integrations import LIST_PRICE as LIST_PRICE
from circlecost.store.integrations import MAX_PRICE as MAX_PRICE
from circlecost.store.integrations import PRICE_PLACES as PRICE_PLACES
from circlecost.store.integrations import PRICE_QUANTUM as PRICE_QUANTUM
from circlecost.store.integrations import IntegrationsMixin
from circlecost.store.ledger import MAX_WINDOW as MAX_WINDOW
from circlecost.store.ledger import LedgerMixin
from circlecost.store.maintenance import COPIED_TABLES as COPIED_TABLES
from circlecost.store.maintenance import MAINTAIN_KEEP as MAINTAIN_KEEP
from circlecost.store.maintenance import MaintenanceMixin
from circlecost.store.quota import QUOTA_HISTORY as QUOTA_HISTORY
from circlecost.store.quota import QUOTA_KINDS as QUOTA_KINDS
from circlecost.store.quota import QUOTA_PERIOD as QUOTA_PERIOD
from circlecost.store.quota import QuotaMixin
from circlecost.store.records import (
    AlertChannel,
    AuditEntry,
    Binding,
    Budget,
    ExportJob,
    ImportWindow,
    Integration,
    Price,
    Principal,
    TagRule,
    VirtualTag,
    WindowTask,
    Workspace,
)
from circlecost.store.schema import BASELINE_VERSION as BASELINE_VERSION
from circlecost.store.schema import MIGRATIONS as MIGRATIONS
from circlecost.store.schema import SchemaMixin
from circlecost.store.virtual_tags import VirtualTagsMixin
from circlecost.store.virtual_tags import virtual_tags_in as virtual_tags_in
from circlecost.store.workspaces import WorkspacesMixin
from circlecost.vocabulary import TAG_COLUMNS as TAG_COLUMNS

__all__ = [
    "DIMENSIONS",
    "AlertChannel",
    "AuditEntry",
    "Binding",
    "Budget",
    "ExportJob",
    "ImportWindow",
    "Integration",
    "InvalidValueError",
    "LoadResult",
    "Price",
    "Principal",
    "Store",
    "StoreConflictError",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreNotFoundError",
    "StoreOutdatedError",
    "TagRule",
    "VirtualTag",
    "WindowTask",
    "Workspace",
]


class Store(
    IntegrationsMixin,
    LedgerMixin,
    QuotaMixin,
    WorkspacesMixin,
    VirtualTagsMixin,
    BudgetsMixin,
    AccessMixin,
    AuditMixin,
    CostsMixin,
    MaintenanceMixin,
    SchemaMixin,
    StoreBase,
):
    """The cost store: an embedded DuckDB file or a shared DuckLake. Holds only its settings,
    never a connection."""
