"""FOCUS 1.2 export: the columns FOCUS requires, non-null where it says so, costs that add up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from circlecost import focus, reports
from circlecost.errors import CirclecostError
from circlecost.store import Store

from .conftest import OCTOBER_PERIOD, load_samples, new_store

# The FOCUS 1.2 columns this export must carry (mandatory, and the conditional ones that apply
# to a credit-priced CI service).
FOCUS_COLUMNS = (
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargeFrequency", "ChargePeriodEnd", "ChargePeriodStart",
    "ConsumedQuantity", "ConsumedUnit", "ContractedCost", "ContractedUnitPrice", "EffectiveCost",
    "InvoiceIssuerName", "ListCost", "ListUnitPrice", "PricingCategory", "PricingQuantity",
    "PricingUnit", "ProviderName", "PublisherName", "ResourceId", "ResourceName", "ResourceType",
    "ServiceCategory", "ServiceName", "ServiceSubcategory", "SubAccountId", "SubAccountName",
    "Tags",
)  # fmt: skip
CONSTANTS = {
    "BillingCurrency": "USD",
    "ChargeCategory": "Usage",
    "ConsumedUnit": "Credits",
    "PricingUnit": "Credits",
    "ProviderName": "CircleCI",
    "PublisherName": "CircleCI",
    "InvoiceIssuerName": "CircleCI",
    "ServiceCategory": "Developer Tools",
    "ServiceSubcategory": "Continuous Integration and Deployment",
}
LATE_PRICE = Decimal("0.0005")  # from Oct 16 on, so billed and list costs differ


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Store:
    store = new_store(tmp_path_factory.mktemp("focus"))
    load_samples(store, schedule=[(date(2026, 10, 16), LATE_PRICE)])
    return store


@pytest.fixture
def reader(store: Store) -> Iterator[duckdb.DuckDBPyConnection]:
    with store.reader() as connection:
        yield connection


@pytest.fixture(params=[".csv", ".parquet"])
def exported(
    request: pytest.FixtureRequest, reader: duckdb.DuckDBPyConnection, tmp_path: Path
) -> tuple[Path, int]:
    # A reader on a machine far from UTC must still write UTC date/times.
    reader.execute("SET TimeZone = 'America/Los_Angeles'")
    output = tmp_path / f"focus{request.param}"
    count = focus.export(reader, date(2026, 10, 1), date(2026, 10, 31), output)
    return output, count


def table(path: Path) -> duckdb.DuckDBPyRelation:
    """The exported file in an in-memory DuckDB, as text columns for CSV (read as written)."""
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    if path.suffix == ".csv":
        return con.sql("SELECT * FROM read_csv(?, all_varchar = true)", params=[str(path)])
    return con.sql("SELECT * FROM read_parquet(?)", params=[str(path)])


def rows(path: Path) -> list[dict[str, Any]]:
    relation = table(path)
    return [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]


def utc(value: Any) -> datetime:
    """A FOCUS date/time from either file, as a naive UTC datetime."""
    if isinstance(value, str):
        assert value.endswith("Z"), value
        return datetime.fromisoformat(value.removesuffix("Z"))
    moment: datetime = value
    assert moment.utcoffset() == timedelta(0)
    return moment.replace(tzinfo=None)


def test_export_writes_one_row_per_line_item(exported: tuple[Path, int]) -> None:
    path, count = exported

    assert count == 517
    assert len(rows(path)) == 517
    assert not path.with_name(path.name + ".partial").exists()


def test_the_focus_columns_come_first_then_the_x_columns(exported: tuple[Path, int]) -> None:
    columns = table(exported[0]).columns

    assert set(FOCUS_COLUMNS) <= set(columns)
    custom = [index for index, name in enumerate(columns) if name.startswith("x_")]
    assert custom, "circlecost's own columns are exported too"
    assert custom == list(range(len(columns) - len(custom), len(columns)))


def test_required_values_are_never_null(exported: tuple[Path, int]) -> None:
    relation = table(exported[0])
    counts = ", ".join(
        f'count(*) FILTER (WHERE "{name}" IS NULL)' for name in focus.NON_NULL_COLUMNS
    )

    [nulls] = relation.aggregate(counts).fetchall()

    assert dict(zip(focus.NON_NULL_COLUMNS, nulls, strict=True)) == dict.fromkeys(
        focus.NON_NULL_COLUMNS, 0
    )


def test_constant_columns_hold_the_focus_values(exported: tuple[Path, int]) -> None:
    for row in rows(exported[0]):
        assert {name: row[name] for name in CONSTANTS} == CONSTANTS
        assert row["ChargeClass"] is None
        assert row["ServiceName"].startswith("CircleCI ")


def test_billed_cost_adds_up_to_the_report_total(
    exported: tuple[Path, int], reader: duckdb.DuckDBPyConnection
) -> None:
    report = reports.build_report(reader, reports.ReportRequest(OCTOBER_PERIOD))

    billed = sum(Decimal(str(row["BilledCost"])) for row in rows(exported[0]))

    assert billed == report.total["amount_usd"]
    assert billed < Decimal("476.0922")  # the later days are billed at the lower price


def test_costs_follow_the_price_and_list_cost_the_list_price(exported: tuple[Path, int]) -> None:
    for row in rows(exported[0]):
        credits = Decimal(str(row["ConsumedQuantity"]))
        price = LATE_PRICE if utc(row["ChargePeriodStart"]).day >= 16 else Decimal("0.0006")
        assert Decimal(str(row["PricingQuantity"])) == credits
        assert Decimal(str(row["ListCost"])) == credits * Decimal("0.0006")
        assert Decimal(str(row["ListUnitPrice"])) == Decimal("0.0006")
        assert Decimal(str(row["ContractedUnitPrice"])) == price
        for name in ("BilledCost", "EffectiveCost", "ContractedCost"):
            assert Decimal(str(row[name])) == credits * price, name


def test_charge_periods_are_utc_days_with_an_exclusive_end(exported: tuple[Path, int]) -> None:
    for row in rows(exported[0]):
        start, end = utc(row["ChargePeriodStart"]), utc(row["ChargePeriodEnd"])
        assert start == datetime.combine(
            date.fromisoformat(str(row["x_UsageDate"])), datetime.min.time()
        )
        assert end == start + timedelta(days=1)
        assert utc(row["BillingPeriodStart"]) == datetime(2026, 10, 1)
        assert utc(row["BillingPeriodEnd"]) == datetime(2026, 11, 1)


def test_tags_are_json_with_circleci_keys_and_no_empty_values(exported: tuple[Path, int]) -> None:
    all_tags = [json.loads(row["Tags"]) for row in rows(exported[0])]

    assert all(key.startswith("circleci:") for tags in all_tags for key in tags)
    assert all(value is not None for tags in all_tags for value in tags.values())
    branches = {tags.get("circleci:vcs_branch") for tags in all_tags}
    assert {"feature,comma", "déploiement-été", None} <= branches
    assert all(tags["circleci:organization_id"] for tags in all_tags)


def test_resources_name_the_job(exported: tuple[Path, int]) -> None:
    jobs = [row for row in rows(exported[0]) if row["ResourceType"] == "CircleCI Job"]

    assert len(jobs) == 516  # one line item (a seat charge) has no job
    assert {row["ResourceName"] for row in jobs} >= {"e2e, smoke", 'integration "slow"'}


def test_export_runs_on_a_read_only_connection(
    reader: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    with pytest.raises(duckdb.Error, match="read-only"):
        reader.execute("CREATE TABLE probe (x INTEGER)")

    count = focus.export(reader, date(2026, 10, 1), date(2026, 10, 31), tmp_path / "focus.csv")

    assert count == 517


def test_export_leaves_the_callers_time_zone_alone(
    reader: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    reader.execute("SET TimeZone = 'Asia/Tokyo'")

    focus.export(reader, date(2026, 10, 1), date(2026, 10, 31), tmp_path / "focus.parquet")

    assert reader.execute("SELECT current_setting('TimeZone')").fetchone() == ("Asia/Tokyo",)


def test_the_parquet_export_is_zstd_compressed(
    reader: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    output = tmp_path / "focus.parquet"

    focus.export(reader, date(2026, 10, 1), date(2026, 10, 31), output)

    codecs = duckdb.sql(
        "SELECT DISTINCT compression FROM parquet_metadata(?)", params=[str(output)]
    ).fetchall()
    assert codecs == [("ZSTD",)]


def test_an_unknown_file_type_is_refused_before_writing(
    reader: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    with pytest.raises(CirclecostError, match=r"must end in \.csv or \.parquet"):
        focus.export(reader, date(2026, 10, 1), date(2026, 10, 31), tmp_path / "focus.json")

    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_output_is_reported_and_leaves_nothing_behind(
    reader: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    output = tmp_path / "missing-folder" / "focus.csv"

    with pytest.raises(CirclecostError, match=r"cannot write .*missing-folder"):
        focus.export(reader, date(2026, 10, 1), date(2026, 10, 31), output)

    assert list(tmp_path.iterdir()) == []
