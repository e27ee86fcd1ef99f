"""A workspace sees only the costs of the integrations bound to it."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from circlecost import reports
from circlecost.store import Integration, Store

from .conftest import OCTOBER_PERIOD, OTHER_ORG_ID, load_samples, new_store
from .samples import credits_by

EXPECTED_CREDITS = Decimal(793487)


@pytest.fixture(scope="module")
def two_integrations(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, list[Integration]]:
    """The samples under two integrations: the second at $0.0005 per credit."""
    store = new_store(tmp_path_factory.mktemp("workspace"))
    first = load_samples(store)
    second = load_samples(store, OTHER_ORG_ID, Decimal("0.0005"))
    return store, [first, second]


def report_for(store: Store, integration_ids: tuple[str, ...] | None) -> reports.Report:
    request = reports.ReportRequest(
        OCTOBER_PERIOD, group_by=("service",), integration_ids=integration_ids
    )
    with store.reader() as connection:
        return reports.build_report(connection, request)


def test_only_the_bound_integration_is_counted(
    two_integrations: tuple[Store, list[Integration]],
) -> None:
    store, (first, second) = two_integrations

    mine = report_for(store, (first.id,))
    theirs = report_for(store, (second.id,))

    assert mine.total["credits"] == EXPECTED_CREDITS
    assert mine.total["amount_usd"] == Decimal("476.0922")
    assert theirs.total["credits"] == EXPECTED_CREDITS
    assert theirs.total["amount_usd"] == EXPECTED_CREDITS * Decimal("0.0005")


def test_without_a_workspace_every_integration_is_counted(
    two_integrations: tuple[Store, list[Integration]],
) -> None:
    store, integrations = two_integrations

    everything = report_for(store, None)
    both = report_for(store, tuple(integration.id for integration in integrations))

    assert everything.total["credits"] == 2 * EXPECTED_CREDITS
    assert everything.total["amount_usd"] == Decimal("476.0922") + Decimal("396.7435")
    assert both.total == everything.total


def test_a_workspace_without_bindings_sees_nothing(
    two_integrations: tuple[Store, list[Integration]],
) -> None:
    store, _ = two_integrations

    report = report_for(store, ())

    assert report.rows == []
    assert report.total["credits"] == 0


def test_dated_prices_apply_per_integration(tmp_path: Path) -> None:
    store = new_store(tmp_path)
    integration = load_samples(store, schedule=[(date(2026, 10, 16), Decimal("0.0005"))])

    report = report_for(store, (integration.id,))

    early = credits_by(lambda item: item.date.day < 16)[True]
    late = credits_by(lambda item: item.date.day >= 16)[True]
    assert report.total["amount_usd"] == early * Decimal("0.0006") + late * Decimal("0.0005")
