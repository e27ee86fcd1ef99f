"""The records the store hands out, and the only form of a token it ever keeps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from circlecost.windows import Window


@dataclass(frozen=True)
class Integration:
    id: str
    organization_id: str
    organization_name: str | None
    description: str
    token_fingerprint: str
    token_user: str | None
    token_rotated_at: datetime | None
    token_expires_on: date | None
    backfill_months: int
    status: str
    status_detail: str
    created_at: datetime
    updated_at: datetime
    last_refresh_at: datetime | None
    created_by_stack: str | None = None  # "organization/project/stack" of a Pulumi create


@dataclass(frozen=True)
class Price:
    effective_from: date
    usd_per_credit: Decimal


@dataclass(frozen=True)
class ImportWindow:
    integration_id: str
    window: Window
    state: str  # planned | requested | loaded | failed
    rows: int | None
    total_mismatch_rows: int | None
    loaded_at: datetime | None
    attempts: int
    last_error: str | None
    current_job_id: str | None


@dataclass(frozen=True)
class ExportJob:
    job_id: str
    integration_id: str
    window: Window
    created_at: datetime
    state: str  # created | processing | completed | failed | loaded
    polls: int
    last_polled_at: datetime | None
    next_poll_at: datetime | None
    download_completed: bool
    error_reason: str | None


@dataclass
class WindowTask:
    """An open window with its current CircleCI job, as the import engine walks them."""

    window: Window
    job_id: str | None
    job_state: str | None
    next_poll_at: datetime | None
    attempts: int
    error_reason: str | None = None  # why CircleCI failed the current job, if it did


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    description: str
    created_at: datetime


@dataclass(frozen=True)
class TagRule:
    value: str
    filter: str  # VQL


@dataclass(frozen=True)
class VirtualTag:
    id: str
    key: str
    rules: tuple[TagRule, ...]
    default_value: str | None
    description: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Budget:
    id: str
    name: str
    workspace_id: str | None  # None: every cost in the store
    amount_usd: Decimal
    period: str  # "month"
    thresholds: tuple[Decimal, ...]  # fractions of the amount, ascending
    filter: str | None  # VQL
    alert_channel_ids: tuple[str, ...]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AlertChannel:
    id: str
    name: str
    url_fingerprint: str  # of the webhook URL, which only the Pulumi state holds
    anomalies: bool
    anomaly_group_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Binding:
    workspace_id: str
    integration_id: str
    created_at: datetime


@dataclass(frozen=True)
class Principal:
    actor: str
    role: str
    granted_by: str | None
    granted_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    changes: dict[str, Any]
