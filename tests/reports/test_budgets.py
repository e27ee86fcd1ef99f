"""Budgets and alert channels on the sample export (October 2026), on both store engines: the
figures against sums of the export, the status at each threshold, one webhook per crossing on
a loopback receiver, a refused webhook retried, and the URL kept out of the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from circlecost import chargeback, metrics
from circlecost.errors import CirclecostError
from circlecost.models import AlertChannelInputs, BudgetInputs
from circlecost.settings import Settings
from circlecost.store import Store, TagRule
from tests import engines
from tests.support import generated_store
from tests.webhooks import Receiver

from .conftest import OCTOBER_PERIOD, load_samples
from .samples import credits_by, october_days

PRICE = Decimal("0.0006")
AS_OF = datetime(2026, 10, 20, 12, 0, tzinfo=UTC)  # 20 of October's 31 days


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture(params=engines.ENGINES)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    store = engines.new_store(request, request.param, tmp_path, owner="ana")
    load_samples(store)
    return Settings(store_location=store.shared or store.path, actor="ana", clock=lambda: AS_OF)


def spent_so_far() -> Decimal:
    return october_days(1, 20) * PRICE


def budget(settings: Settings, amount: Decimal, **fields: Any) -> str:
    inputs = BudgetInputs.model_validate({"name": "platform", "amountUsd": str(amount), **fields})
    return chargeback.put_budget(settings, inputs)


def test_spent_forecast_and_status_follow_the_thresholds(settings: Settings) -> None:
    spent = spent_so_far()
    cases = {spent * 2: "ok", spent / Decimal("0.9"): "warning", spent / 2: "over"}
    for amount, expected in cases.items():
        amount = round(amount, 2)
        budget_id = budget(settings, amount)
        figures = chargeback.budget_status(settings, budget_id)
        assert figures is not None
        assert figures["spent_usd"] == float(round(spent, 2))
        assert figures["forecast_usd"] == float(round(spent / 20 * 31, 2))
        assert (figures["period_start"], figures["period_end"]) == ("2026-10-01", "2026-10-31")
        want = (
            "over" if spent >= amount else "warning" if spent >= amount * Decimal("0.8") else "ok"
        )
        assert figures["status"] == want == expected
        chargeback.delete_budget(settings, budget_id)


def test_a_filter_narrows_what_a_budget_counts(settings: Settings) -> None:
    budget_id = budget(settings, Decimal(1000), filter="costs.service = 'Compute'")
    figures = chargeback.budget_status(settings, budget_id)

    everything = chargeback.budget_status(settings, budget(settings, Decimal(1000), name="all"))
    assert figures is not None
    assert everything is not None
    assert 0 < figures["spent_usd"] < everything["spent_usd"]


def test_a_crossing_is_sent_once_to_the_channel_and_a_refusal_is_retried(
    settings: Settings, receiver: Receiver
) -> None:
    channel = AlertChannelInputs.model_validate({"name": "finops", "url": receiver.url})
    channel_id = chargeback.put_alert_channel(settings, channel)
    budget(settings, round(spent_so_far() / 2, 2), alertChannelIds=[channel_id])

    receiver.status = 500
    refused = chargeback.deliver_alerts(settings, channel_id, receiver.url)
    receiver.status = 200
    first = chargeback.deliver_alerts(settings, channel_id, receiver.url)
    second = chargeback.deliver_alerts(settings, channel_id, receiver.url)

    assert refused["last_error"] == "alert channel 'finops': the webhook answered HTTP 500"
    assert refused["alerts_sent"] == 0
    texts = [body["text"] for body in receiver.bodies]
    assert len(texts) == 2, "both thresholds crossed at once: one message, refused, then sent"
    assert texts[0] == texts[1]
    assert "budget 'platform' reached 100%" in texts[1]
    assert (first["alerts_sent"], second["alerts_sent"]) == (1, 1)
    assert second["last_error"] is None
    store = settings.reader()
    assert store.list_audit(object_type="alert_channel")[0].actor == "ana"
    location = store.shared or store.path
    stored = engines.stored_bytes(location)
    assert b"secretpart" not in stored, "the webhook URL is never stored"


def test_a_later_threshold_is_a_new_message(settings: Settings, receiver: Receiver) -> None:
    channel = AlertChannelInputs.model_validate({"name": "finops", "url": receiver.url})
    channel_id = chargeback.put_alert_channel(settings, channel)
    spent = spent_so_far()
    budget_id = budget(settings, round(spent / Decimal("0.9"), 2), alertChannelIds=[channel_id])
    chargeback.deliver_alerts(settings, channel_id, receiver.url)  # 90%: the 80% warning

    lower = BudgetInputs.model_validate(
        {"name": "platform", "amountUsd": str(round(spent / 2, 2)), "alertChannelIds": [channel_id]}
    )
    chargeback.put_budget(settings, lower, budget_id)
    outputs = chargeback.deliver_alerts(settings, channel_id, receiver.url)
    chargeback.deliver_alerts(settings, channel_id, receiver.url)

    texts = [body["text"] for body in receiver.bodies]
    assert ["reached 80%" in texts[0], "reached 100%" in texts[1]] == [True, True]
    assert len(texts) == 2
    assert outputs["alerts_sent"] == 2


def test_an_unreachable_webhook_is_named_by_its_channel_not_its_url(settings: Settings) -> None:
    url = "http://127.0.0.1:9/hooks/secretpart"  # the discard port: nothing listens
    channel_id = chargeback.put_alert_channel(
        settings, AlertChannelInputs.model_validate({"name": "ops", "url": url})
    )
    budget(settings, Decimal("1.00"), alertChannelIds=[channel_id])

    outputs = chargeback.deliver_alerts(settings, channel_id, url)

    assert (
        outputs["last_error"]
        == "alert channel 'ops': the webhook could not be reached (ConnectError)"
    )
    assert outputs["alerts_sent"] == 0


@pytest.mark.parametrize(
    ("inputs", "field", "mentions"),
    [
        ({"name": "b", "amountUsd": "-5"}, "amountUsd", "above 0"),
        ({"name": "b", "amountUsd": "ten"}, "amountUsd", "not an amount of USD"),
        ({"name": "b", "amountUsd": "10.001"}, "amountUsd", "two decimals"),
        ({"name": "b", "amountUsd": "10", "thresholds": [0.8, 0.8]}, "thresholds", "repeated"),
        ({"name": "b", "amountUsd": "10", "period": "week"}, "period", "not a budget period"),
        ({"name": "b", "amountUsd": "10", "filter": "costs.servce = 'x'"}, "filter",
         "unknown field 'costs.servce'"),
    ],
)  # fmt: skip
def test_bad_budget_inputs_name_the_field(
    inputs: dict[str, Any], field: str, mentions: str
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        BudgetInputs.model_validate(inputs)
    assert raised.value.errors()[0]["loc"][0] == field
    assert mentions in str(raised.value)


def test_a_webhook_url_must_be_https_beyond_this_machine() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="must be https") as raised:
        AlertChannelInputs.model_validate({"name": "x", "url": "http://hooks.example/secretpart"})
    assert "secretpart" not in str(raised.value)


def test_a_budget_of_a_missing_workspace_or_channel_is_refused(settings: Settings) -> None:
    with pytest.raises(CirclecostError, match=r"workspaceId: .* not in the store"):
        budget(settings, Decimal(10), workspaceId="no-such-workspace")
    with pytest.raises(CirclecostError, match="alertChannelIds: there is no alert channel"):
        budget(settings, Decimal(10), alertChannelIds=["no-such-channel"])


def test_a_budget_may_filter_by_a_virtual_tag_the_store_has(settings: Settings) -> None:
    store = settings.reader()
    rules = [TagRule("payments", "costs.account IN ('api', 'billing')")]
    store.create_virtual_tag("team", rules, actor="ana")

    budget_id = budget(settings, Decimal(1000), filter="vtags.team = 'payments'")
    with pytest.raises(CirclecostError, match=r"filter: .*unknown virtual tag 'owner'"):
        budget(settings, Decimal(1000), name="other", filter="vtags.owner = 'x'")

    figures = chargeback.budget_status(settings, budget_id)
    payments = credits_by(
        lambda item: True,
        lambda item: item.account in ("api", "billing") and item.date.day <= 20,
    )
    assert figures is not None
    assert figures["spent_usd"] == float(round(payments[True] * PRICE, 2))


def test_a_planned_budget_on_a_virtual_tag_not_yet_stored_has_no_figures_yet(
    settings: Settings,
) -> None:
    planned = BudgetInputs.model_validate(
        {"name": "payments", "amountUsd": "100", "filter": "vtags.team = 'payments'"}
    )

    assert chargeback.planned_status(settings, planned) is None
    settings.reader().create_virtual_tag("team", [TagRule("payments", "costs.account = 'api'")])
    figures = chargeback.planned_status(settings, planned)
    assert figures is not None
    assert figures["spent_usd"] > 0


def test_budgets_need_an_owner_or_editor(settings: Settings) -> None:
    viewer = Settings(store_location=settings.store_location, actor="val", clock=settings.clock)
    Store(settings.store_location).grant_role("val", "Viewer", granted_by="ana")

    with pytest.raises(CirclecostError, match="'val' holds Viewer, but this needs"):
        budget(viewer, Decimal(10))


def test_metrics_carry_each_budget(settings: Settings) -> None:
    budget(settings, Decimal("50.00"))
    store = settings.reader()

    families = metrics.collect(store, OCTOBER_PERIOD, "this_month", AS_OF.date())
    text = metrics.exposition(families)

    assert 'circlecost_budget_status{budget="platform"} 2' in text
    assert 'circlecost_budget_amount_usd{budget="platform"} 50' in text
    spent = float(round(spent_so_far(), 6))
    assert f'circlecost_budget_spent_usd{{budget="platform"}} {metrics.number(spent)}' in text


def test_a_channel_with_anomalies_hears_of_each_once(tmp_path: Path, receiver: Receiver) -> None:
    store, _part = generated_store(tmp_path, spikes={(date(2026, 10, 22), "billing"): 12})
    two_days_later = datetime(2026, 10, 24, 9, 0, tzinfo=UTC)
    settings = Settings(store_location=store.path, actor="ana", clock=lambda: two_days_later)
    channel = AlertChannelInputs.model_validate(
        {"name": "ops", "url": receiver.url, "anomalies": True}
    )
    channel_id = chargeback.put_alert_channel(settings, channel)

    first = chargeback.deliver_alerts(settings, channel_id, receiver.url)
    again = chargeback.deliver_alerts(settings, channel_id, receiver.url)

    texts = [body["text"] for body in receiver.bodies]
    spike = [text for text in texts if "2026-10-22 in account 'billing'" in text]
    assert len(spike) == 1, texts
    assert "top project billing" in spike[0]
    assert len(texts) == first["alerts_sent"] == again["alerts_sent"]


def test_a_channel_without_anomalies_hears_none(tmp_path: Path, receiver: Receiver) -> None:
    store, _part = generated_store(tmp_path, spikes={(date(2026, 10, 22), "billing"): 12})
    settings = Settings(
        store_location=store.path,
        actor="ana",
        clock=lambda: datetime(2026, 10, 24, 9, 0, tzinfo=UTC),
    )
    channel = AlertChannelInputs.model_validate({"name": "ops", "url": receiver.url})
    channel_id = chargeback.put_alert_channel(settings, channel)

    outputs = chargeback.deliver_alerts(settings, channel_id, receiver.url)

    assert receiver.bodies == []
    assert outputs["alerts_sent"] == 0
