"""Fixtures: a store holding the two sample parts (read-only, shared), and fresh stores."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from circlecost import reports
from circlecost.store import Integration, Store
from tests.support import ORG_ID, load_sample_export

OCTOBER_PERIOD = reports.Period(date(2026, 10, 1), date(2026, 10, 31))
OTHER_ORG_ID = "0f6c9a4e-5d0b-4a52-9b0e-2a7d4c1e9f00"

BuildReport = Callable[..., reports.Report]


def new_store(folder: Path) -> Store:
    store = Store(folder / "costs.duckdb", writer_kind="pytest", lock_timeout=2.0)
    store.migrate()
    return store


def load_samples(
    store: Store,
    org_id: str = ORG_ID,
    price: Decimal = Decimal("0.0006"),
    schedule: list[tuple[date, Decimal]] | None = None,
) -> Integration:
    integration = store.insert_integration(
        org_id,
        f"sha256:{org_id[:16]}",
        organization_name="initech",
        base_price=price,
        price_schedule=schedule or [],
    )
    load_sample_export(store, integration.id)
    return integration


@pytest.fixture(scope="session")
def sample_store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    """The two sample parts at $0.0006 per credit. Tests only read it."""
    store = new_store(tmp_path_factory.mktemp("samples"))
    load_samples(store)
    return store


@pytest.fixture
def reader(sample_store: Store) -> Any:
    with sample_store.reader() as connection:
        yield connection


@pytest.fixture
def build(reader: duckdb.DuckDBPyConnection) -> BuildReport:
    """build(period=October, **request fields) -> the report over the sample store."""

    def run(period: reports.Period = OCTOBER_PERIOD, **fields: Any) -> reports.Report:
        return reports.build_report(reader, reports.ReportRequest(period, **fields))

    return run
