"""Costs: priced by the dated price in effect, re-priced at once, grouped only by known dims."""

from datetime import date
from decimal import Decimal

import pytest

from circlecost.errors import CirclecostError
from circlecost.store import BASE_PRICE_DATE, Integration, Price, Store
from circlecost.vocabulary import token_fingerprint
from tests.support import OCTOBER, SAMPLE_PARTS


@pytest.fixture
def loaded(store: Store, integration: Integration) -> Integration:
    store.replace_window_rows(integration.id, OCTOBER, "job-1", SAMPLE_PARTS)
    return integration


def usd_by_date(store: Store) -> dict[date, Decimal]:
    return {row["date"]: row["amount_usd"] for row in store.cost_totals(["date"])["rows"]}


def test_price_change_reprices_every_cost_by_exactly_the_ratio(
    store: Store, loaded: Integration
) -> None:
    before = store.cost_totals(["service", "date"])

    store.set_prices(loaded.id, Decimal("0.00045"))

    after = store.cost_totals(["service", "date"])
    ratio = Decimal("0.00045") / Decimal("0.0006")
    assert after["total"]["amount_usd"] == before["total"]["amount_usd"] * ratio
    assert after["total"]["amount_usd"] == Decimal("357.069150")
    assert [row["amount_usd"] for row in after["rows"]] == [
        row["amount_usd"] * ratio for row in before["rows"]
    ]
    assert after["total"]["credits"] == before["total"]["credits"]


def test_dated_prices_apply_from_their_date_on(store: Store, loaded: Integration) -> None:
    credits = {row["date"]: row["credits"] for row in store.cost_totals(["date"])["rows"]}

    store.set_prices(
        loaded.id,
        Decimal("0.0006"),
        [(date(2026, 10, 10), Decimal("0.0005")), (date(2026, 10, 20), Decimal("0.0004"))],
    )

    usd = usd_by_date(store)
    for day, amount in credits.items():
        price = (
            Decimal("0.0006")
            if day < date(2026, 10, 10)
            else Decimal("0.0005")
            if day < date(2026, 10, 20)
            else Decimal("0.0004")
        )
        assert usd[day] == amount * price, day
    assert store.get_prices(loaded.id) == [
        Price(BASE_PRICE_DATE, Decimal("0.0006")),
        Price(date(2026, 10, 10), Decimal("0.0005")),
        Price(date(2026, 10, 20), Decimal("0.0004")),
    ]


@pytest.mark.parametrize(
    "schedule",
    [
        [(date(2026, 1, 1), Decimal(0))],
        [(date(2026, 1, 1), Decimal("-0.1"))],
        [(date(2026, 1, 1), Decimal("0.1")), (date(2026, 1, 1), Decimal("0.2"))],
    ],
)
def test_bad_prices_are_refused_and_keep_the_old_ones(
    store: Store, loaded: Integration, schedule: list[tuple[date, Decimal]]
) -> None:
    with pytest.raises(ValueError, match="price"):
        store.set_prices(loaded.id, Decimal("0.0005"), schedule)

    assert store.get_prices(loaded.id) == [Price(BASE_PRICE_DATE, Decimal("0.0006"))]


def test_purge_leaves_no_row_of_that_integration_and_all_rows_of_others(
    store: Store, loaded: Integration
) -> None:
    other = store.insert_integration("11111111-2222-3333-4444-555555555555", "sha256:other")
    store.replace_window_rows(other.id, OCTOBER, "job-9", SAMPLE_PARTS)
    store.record_job(loaded.id, OCTOBER, "job-2", OCTOBER.end)
    workspace = store.create_workspace("platform")
    store.bind(workspace.id, loaded.id)
    store.bind(workspace.id, other.id)

    removed = store.purge_integration(loaded.id, actor="alice")

    assert removed["usage"] == 401
    assert removed["integrations"] == 1
    with store.reader() as con:
        for table in ("usage", "export_jobs", "import_windows", "prices", "bindings"):
            mine = con.execute(
                f"SELECT count(*) FROM {table} WHERE integration_id = ?", [loaded.id]
            )
            assert mine.fetchone() == (0,), table
        theirs = con.execute("SELECT count(*) FROM usage WHERE integration_id = ?", [other.id])
        assert theirs.fetchone() == (401,)
    assert store.get_integration(loaded.id) is None
    assert store.integration_summary(other.id)["line_items"] == 517
    assert store.workspace_integration_ids(workspace.id) == [other.id]


def test_costs_are_filtered_by_integration_and_date(store: Store, loaded: Integration) -> None:
    everything = store.cost_totals([])["total"]

    first_week = store.cost_totals([], date(2026, 10, 1), date(2026, 10, 7), [loaded.id])
    nobody = store.cost_totals(["service"], integration_ids=[])

    assert Decimal(0) < first_week["total"]["credits"] < everything["credits"]
    assert nobody == {"rows": [], "total": {"credits": 0, "amount_usd": 0}}


def test_costs_take_a_compiled_filter_with_bound_values(store: Store, loaded: Integration) -> None:
    compute = store.cost_totals([], where="service = ?", where_params=["Compute"])

    assert compute["total"]["credits"] == Decimal(436594)


@pytest.mark.parametrize("dimension", ["amount_usd", "date; DROP TABLE usage", "tag:vcs_branch"])
def test_grouping_by_an_unknown_dimension_is_refused(store: Store, dimension: str) -> None:
    with pytest.raises(CirclecostError, match="cannot group costs by"):
        store.cost_totals([dimension])


def test_cost_lines_carry_every_dimension_and_tag(store: Store, loaded: Integration) -> None:
    with store.reader() as con:
        row = con.execute(
            "SELECT * FROM costs WHERE job_id = '632ebbdc-28b0-498b-98d4-5609f85bd800'"
        ).fetchone()
        names = [column[0] for column in con.description]
    assert row is not None
    line = dict(zip(names, row, strict=True))

    assert {key: line[key] for key in names if key not in ("integration_id", "window_start")} == {
        "billing_account": "initech",
        "billing_account_id": "6513270e-269e-4d37-b2a7-4de452e6b438",
        "account": "api",
        "account_id": "81e74ef5-e8e2-4d94-8ed9-04759531985d",
        "service": "Compute",
        "category": "windows machine",
        "subcategory": "windows.medium",
        "resource": "test",
        "charge_type": "Usage",
        "date": date(2026, 10, 22),
        "tag_organization_id": "6513270e-269e-4d37-b2a7-4de452e6b438",
        "tag_project_id": "81e74ef5-e8e2-4d94-8ed9-04759531985d",
        "tag_vcs_name": "github",
        "tag_vcs_url": "https://github.com/initech/api",
        "tag_vcs_branch": "release/2026.11",
        "tag_pipeline_id": "80eba63a-983c-470d-bc65-48d5686ae91d",
        "tag_job_build_status": "success",
        "credits": Decimal(1098),
        "usd_per_credit": Decimal("0.0006"),
        "amount_usd": Decimal("0.6588"),
        "job_id": "632ebbdc-28b0-498b-98d4-5609f85bd800",
        "job_run_number": 84306,
        "pipeline_number": 888,
        "workflow_name": "deploy",
        "export_job_id": "job-1",
    }


def test_fingerprint_is_short_and_stable() -> None:
    assert token_fingerprint("CCIPAT_x") == token_fingerprint("CCIPAT_x")
    assert token_fingerprint("CCIPAT_x") != token_fingerprint("CCIPAT_y")
    assert len(token_fingerprint("CCIPAT_x")) == len("sha256:") + 16
