"""Budgets and alert channels: their use cases, shared by the Pulumi resources and the CLI.

A budget's figures are made when asked for, from the costs in the store:

- spent: the cost of the budget's scope (its workspace's integrations, else every one) and
  filter from the first of the month to today (UTC), as `report --period this_month` shows it;
- forecast: a linear run-rate, spent ÷ the days elapsed (the 1st to today, both counted) × the
  days of the month. Simple and explainable; it reads a costly first week as a costly month;
- status: `over` once spent reaches the amount, `warning` once it reaches the lowest
  threshold (a fraction of the amount), else `ok`.

Each threshold crossed in a month is an alert for every channel the budget names, sent once:
`alert_deliveries` remembers it. A channel with `anomalies` also hears of each anomaly
(`circlecost.anomalies`, grouped by its dimension) on the last ANOMALY_DAYS days. Alerts go out
where the webhook URL is known, when Pulumi creates, updates or refreshes the AlertChannel; the
store keeps only a fingerprint of the URL.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, TypedDict

import httpx

from circlecost import anomalies, reports, virtual_tags
from circlecost.errors import CirclecostError
from circlecost.models import AlertChannelInputs, BudgetInputs
from circlecost.render import usd
from circlecost.service import UNSTORED, cents, conflict_on, require_role
from circlecost.settings import Settings
from circlecost.store import AlertChannel, Budget, Store
from circlecost.vocabulary import CHARGEBACK_CHANGERS
from circlecost.vocabulary import token_fingerprint as secret_fingerprint
from circlecost.vql import VQLError, compile_filter

log = logging.getLogger("circlecost.chargeback")

ANOMALY_DAYS = 7
WEBHOOK_TIMEOUT_SECONDS = 10.0
ANOMALY_SUBJECT = "anomalies"


# --- budgets --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetStatus:
    budget: Budget
    period: reports.Period  # the whole month
    as_of: date
    spent: Decimal
    forecast: Decimal
    status: str  # ok, warning, over
    crossed: tuple[Decimal, ...]  # the thresholds spent has reached, ascending

    def occasion(self, threshold: Decimal) -> str:
        return f"{self.period.start:%Y-%m}@{threshold}"

    def alert_text(self, threshold: Decimal) -> str:
        budget = self.budget
        share = self.spent / budget.amount_usd * 100
        return (
            f"circlecost: budget '{budget.name}' reached {threshold * 100:.0f}% — "
            f"{usd(self.spent)} spent of {usd(budget.amount_usd)} ({share:.0f}%) in "
            f"{self.period.start:%B %Y} as of {self.as_of}; forecast {usd(self.forecast)} by "
            f"{self.period.end} (status {self.status})"
        )


class BudgetOutputs(TypedDict):
    spent_usd: float
    forecast_usd: float
    status: str
    period_start: str
    period_end: str
    as_of: str


def evaluate(store: Store, budget: Budget, today: date) -> BudgetStatus:
    """The budget's figures for the month of `today`."""
    month = reports.Period(today.replace(day=1), reports.month_end(today), "month")
    so_far = reports.Period(month.start, today, "month_to_date")
    scope = None if budget.workspace_id is None else workspace_scope(store, budget)
    request = reports.ReportRequest(so_far, filter=budget.filter, integration_ids=scope)
    with store.reader() as connection:
        spent = reports.build_report(connection, request).total["amount_usd"]
    forecast = spent / so_far.days * month.days
    crossed = tuple(t for t in budget.thresholds if spent >= t * budget.amount_usd)
    status = "over" if spent >= budget.amount_usd else "warning" if crossed else "ok"
    return BudgetStatus(budget, month, today, spent, forecast, status, crossed)


def workspace_scope(store: Store, budget: Budget) -> tuple[str, ...]:
    workspace_id = budget.workspace_id or ""
    if store.get_workspace(workspace_id) is None:
        raise CirclecostError(
            f"workspaceId: budget '{budget.name}' names workspace {workspace_id}, which is not "
            "in the store",
            hint="point the budget at an existing Workspace (or give none for every cost)",
        )
    return tuple(store.workspace_integration_ids(workspace_id))


def budget_outputs(status: BudgetStatus) -> BudgetOutputs:
    return BudgetOutputs(
        spent_usd=cents(status.spent),
        forecast_usd=cents(status.forecast),
        status=status.status,
        period_start=status.period.start.isoformat(),
        period_end=status.period.end.isoformat(),
        as_of=status.as_of.isoformat(),
    )


def as_budget(inputs: BudgetInputs, budget_id: str = "") -> Budget:
    return Budget(
        budget_id,
        inputs.name,
        inputs.workspace_id or None,
        inputs.amount_usd,
        inputs.period,
        inputs.thresholds,
        inputs.filter,
        inputs.alert_channel_ids,
        UNSTORED,
        UNSTORED,
    )


def put_budget(settings: Settings, inputs: BudgetInputs, budget_id: str | None = None) -> str:
    store = settings.store()
    action = "change a budget" if budget_id else "create a budget"
    actor = require_role(store, settings, CHARGEBACK_CHANGERS, action)
    budget = as_budget(inputs, budget_id or str(uuid.uuid4()))
    if budget.workspace_id is not None:
        workspace_scope(store, budget)
    if budget.filter is not None:
        check_filter(store, budget.filter)
    for channel_id in budget.alert_channel_ids:
        if store.get_alert_channel(channel_id) is None:
            raise CirclecostError(
                f"alertChannelIds: there is no alert channel {channel_id} in the store",
                hint="name the id of an AlertChannel resource",
            )
    with conflict_on("name"):
        return store.put_budget(budget, actor=actor).id


def check_filter(store: Store, text: str) -> None:
    """The filter against the store's virtual tags (the inputs checked all the rest)."""
    with store.reader() as connection:
        virtual = virtual_tags.virtual_columns(connection)
    try:
        compile_filter(text, virtual)
    except VQLError as error:
        raise CirclecostError(f"filter: {error.message}", hint=error.hint) from None


def delete_budget(settings: Settings, budget_id: str) -> None:
    store = settings.store()
    actor = require_role(store, settings, CHARGEBACK_CHANGERS, "delete a budget")
    store.delete_budget(budget_id, actor=actor)


def budget_status(settings: Settings, budget_id: str) -> BudgetOutputs | None:
    """A stored budget's outputs as of today; None when it is gone from the store."""
    store = settings.reader()
    budget = store.get_budget(budget_id)
    if budget is None:
        return None
    return budget_outputs(evaluate(store, budget, settings.clock().date()))


def planned_status(settings: Settings, inputs: BudgetInputs) -> BudgetOutputs | None:
    """What a budget not stored yet (or changed) would show today; None without a store, or
    while its filter names a virtual tag the store does not have yet (one declared in the same
    change: the budget is created after it, and checked against it then)."""
    if not settings.store_exists():
        return None
    store = settings.reader()
    try:
        return budget_outputs(evaluate(store, as_budget(inputs), settings.clock().date()))
    except VQLError:
        return None


def all_statuses(settings: Settings, store: Store) -> list[BudgetStatus]:
    today = settings.clock().date()
    return [evaluate(store, budget, today) for budget in store.list_budgets()]


# --- alert channels -------------------------------------------------------------------------------


def put_alert_channel(
    settings: Settings, inputs: AlertChannelInputs, channel_id: str | None = None
) -> str:
    store = settings.store()
    action = "change an alert channel" if channel_id else "create an alert channel"
    actor = require_role(store, settings, CHARGEBACK_CHANGERS, action)
    channel = AlertChannel(
        channel_id or str(uuid.uuid4()),
        inputs.name,
        secret_fingerprint(inputs.url.get_secret_value()),
        inputs.anomalies,
        inputs.anomaly_group_by,
        UNSTORED,
        UNSTORED,
    )
    with conflict_on("name"):
        return store.put_alert_channel(channel, actor=actor).id


def delete_alert_channel(settings: Settings, channel_id: str) -> None:
    store = settings.store()
    actor = require_role(store, settings, CHARGEBACK_CHANGERS, "delete an alert channel")
    store.delete_alert_channel(channel_id, actor=actor)


@dataclass(frozen=True)
class Alert:
    subject_id: str  # a budget's id, or ANOMALY_SUBJECT
    occasion: str  # what makes it one alert: a month and threshold, a day and group
    text: str


class ChannelOutputs(TypedDict):
    url_fingerprint: str
    alerts_sent: int
    last_error: str | None


def due_alerts(store: Store, channel: AlertChannel, today: date) -> list[Alert]:
    """Every alert the channel should have heard of by now, sent or not."""
    due: list[Alert] = []
    for budget in store.list_budgets():
        if channel.id in budget.alert_channel_ids:
            status = evaluate(store, budget, today)
            due += [
                Alert(budget.id, status.occasion(t), status.alert_text(t)) for t in status.crossed
            ]
    if channel.anomalies:
        period = reports.Period(today - timedelta(days=ANOMALY_DAYS - 1), today)
        request = anomalies.AnomalyRequest(period, channel.anomaly_group_by)
        with store.reader() as connection:
            rows = anomalies.find(connection, request).sections[0].rows
        due += [anomaly_alert(channel, row) for row in rows]
    return due


def anomaly_alert(channel: AlertChannel, row: dict[str, Any]) -> Alert:
    text = (
        f"circlecost: cost anomaly on {row['day']} in {channel.anomaly_group_by} "
        f"'{reports.group_label(row['group'])}': {usd(row['amount_usd'])} against a usual "
        f"{usd(row['baseline_usd'])} (top project {row['top_project']}, job {row['top_job']}, "
        f"branch {row['top_branch']})"
    )
    return Alert(ANOMALY_SUBJECT, f"{row['day']}:{row['group']}", text)


def deliver_alerts(settings: Settings, channel_id: str, url: str) -> ChannelOutputs:
    """Sends the channel the due alerts it has not had, once each. Thresholds of one budget
    crossed together make one message (of the highest). A message is recorded before it is
    sent (so that two runners cannot both send it) and forgotten again if the webhook refuses
    it, for the next run to retry. Errors name the channel, never the URL."""
    store = settings.store()
    channel = store.get_alert_channel(channel_id)
    if channel is None:
        raise CirclecostError(f"there is no alert channel {channel_id} in the store")
    last_error: str | None = None
    for subject_id, alerts in messages(store, channel, settings.clock().date()):
        message_id = str(uuid.uuid4())
        occasions = [alert.occasion for alert in alerts]
        text = alerts[-1].text
        if not store.claim_alert(channel.id, subject_id, occasions, message_id, text):
            continue  # another runner claimed it
        error = post_alert(channel, url, text)
        if error is not None:
            store.forget_alert(channel.id, message_id)
            last_error = error
            log.warning("%s", error)
    return ChannelOutputs(
        url_fingerprint=channel.url_fingerprint,
        alerts_sent=store.delivery_count(channel.id),
        last_error=last_error,
    )


def messages(store: Store, channel: AlertChannel, today: date) -> list[tuple[str, list[Alert]]]:
    """The alerts not yet delivered, as messages: (subject, the alerts one message announces)."""
    by_subject: dict[str, list[Alert]] = {}
    for alert in due_alerts(store, channel, today):
        by_subject.setdefault(alert.subject_id, []).append(alert)
    result: list[tuple[str, list[Alert]]] = []
    for subject_id, due in by_subject.items():
        sent = store.delivered(channel.id, subject_id, [alert.occasion for alert in due])
        alerts = [alert for alert in due if alert.occasion not in sent]
        if not alerts:
            continue
        if subject_id == ANOMALY_SUBJECT:
            result += [(subject_id, [alert]) for alert in alerts]
        else:
            result.append((subject_id, alerts))  # ascending thresholds: the last is the highest
    return result


def post_alert(channel: AlertChannel, url: str, text: str) -> str | None:
    """POSTs Slack-compatible JSON; the reason it failed, or None."""
    try:
        response = httpx.post(
            url, json={"text": text}, timeout=WEBHOOK_TIMEOUT_SECONDS, follow_redirects=False
        )
    except httpx.HTTPError as error:
        reason = type(error).__name__  # never str(error): it may quote the URL
        return f"alert channel '{channel.name}': the webhook could not be reached ({reason})"
    if response.status_code >= 300:
        return f"alert channel '{channel.name}': the webhook answered HTTP {response.status_code}"
    return None
