"""Virtual tags on the sample export: a split into teams adds up to the report's total and to
the sums of its projects (summed here from the export itself), first match wins, a rule change
re-tags every cost without touching the usage rows, and filters, insights and the FOCUS export
see the same values; on both store engines."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
from pydantic import ValidationError

from circlecost import focus, insights, reports
from circlecost.errors import CirclecostError
from circlecost.models import UNTAGGED, VirtualTagInputs
from circlecost.store import Store, TagRule
from circlecost.vql import VQLError
from tests import engines

from .conftest import OCTOBER_PERIOD, load_samples
from .samples import credits_by

PRICE = Decimal("0.0006")  # the samples' price per credit
PAYMENTS = ("api", "billing")
PLATFORM = ("web", "data-pipeline")
TEAMS = [
    TagRule("payments", "costs.account IN ('api', 'billing')"),
    TagRule("platform", "costs.account IN ('web', 'data-pipeline')"),
]


@pytest.fixture(params=engines.ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    store = engines.new_store(request, request.param, tmp_path, owner="ana")
    load_samples(store)
    return store


def report(store: Store, **fields: Any) -> reports.Report:
    with store.reader() as connection:
        return reports.build_report(connection, reports.ReportRequest(OCTOBER_PERIOD, **fields))


def team_credits(store: Store, **fields: Any) -> dict[str, Decimal]:
    result = report(store, group_by=("vtag:team",), **fields)
    return {row["vtag:team"]: row["credits"] for row in result.rows}


def project_credits(projects: tuple[str | None, ...] | None = None) -> Decimal:
    """The sample's credits of `projects` (None: of every line item not in a named team)."""
    named = PAYMENTS + PLATFORM
    sums = credits_by(
        lambda item: True,
        lambda item: item.account in projects if projects else item.account not in named,
    )
    return sums.get(True, Decimal(0))


def test_a_two_team_split_adds_up_to_the_total_and_to_the_sums_of_its_projects(
    store: Store,
) -> None:
    everyone_else = (*PLATFORM, "docs")
    two_teams = [TEAMS[0], TagRule("platform", "costs.account IN ('web', 'data-pipeline', 'docs')")]
    store.create_virtual_tag("team", two_teams)

    split = report(store, group_by=("vtag:team",))
    whole = report(store)

    by_team = {row["vtag:team"]: row for row in split.rows}
    assert set(by_team) == {"payments", "platform"}
    assert by_team["payments"]["credits"] == project_credits(PAYMENTS) > 0
    assert by_team["platform"]["credits"] == project_credits(everyone_else) > 0
    for figure in ("credits", "amount_usd"):
        assert sum(row[figure] for row in split.rows) == whole.total[figure]
        assert split.total[figure] == whole.total[figure]
    assert by_team["payments"]["amount_usd"] == project_credits(PAYMENTS) * PRICE


def test_costs_no_rule_matches_are_untagged(store: Store) -> None:
    store.create_virtual_tag("team", TEAMS)

    teams = team_credits(store)

    assert teams["payments"] == project_credits(PAYMENTS) > 0
    assert teams["platform"] == project_credits(PLATFORM) > 0
    assert teams[UNTAGGED] == project_credits() > 0, "docs matches no rule"
    assert sum(teams.values()) == report(store).total["credits"]


def test_the_first_matching_rule_wins_and_the_default_value_takes_the_rest(store: Store) -> None:
    overlapping = [
        TagRule("payments", "costs.account = 'billing'"),
        TagRule("others", "costs.account LIKE '%a%'"),
    ]
    store.create_virtual_tag("team", overlapping, default_value="shared")

    teams = team_credits(store)

    assert teams["payments"] == project_credits(("billing",))
    assert teams["others"] == project_credits(("api", "data-pipeline"))
    assert teams["shared"] == project_credits(("web", "docs"))
    assert sum(teams.values()) == report(store).total["credits"]


def usage_fingerprint(store: Store) -> tuple[Any, ...]:
    with store.reader() as connection:
        row = connection.execute(
            "SELECT count(*), max(loaded_at), sum(hash(JOB_ID)) FROM usage"
        ).fetchone()
    assert row is not None
    return tuple(row)


def test_a_rule_change_re_tags_every_cost_without_touching_the_usage_rows(store: Store) -> None:
    tag = store.create_virtual_tag("team", TEAMS)
    before = usage_fingerprint(store)

    moved = [TagRule("payments", "costs.account IN ('api', 'billing', 'docs')"), TEAMS[1]]
    store.update_virtual_tag(tag.id, "team", moved)
    teams = team_credits(store)

    assert teams["payments"] == project_credits((*PAYMENTS, "docs"))
    assert teams["platform"] == project_credits(PLATFORM)
    assert usage_fingerprint(store) == before


def test_a_filter_on_a_virtual_tag_selects_its_costs_in_every_bin(store: Store) -> None:
    store.create_virtual_tag("team", TEAMS)

    payments = report(store, filter="vtags.team = 'payments'", bin="week")
    not_payments = report(store, filter="vtags.team != 'payments' AND costs.service = 'Compute'")

    assert payments.total["credits"] == project_credits(PAYMENTS)
    assert sum(row["credits"] for row in payments.rows) == payments.total["credits"]
    compute = credits_by(
        lambda item: True, lambda item: item.account not in PAYMENTS and item.service == "Compute"
    )
    assert not_payments.total["credits"] == compute[True]


def test_rules_on_tags_read_the_usage_rows_and_still_add_up(store: Store) -> None:
    by_branch = [TagRule("release", "tags.name = 'circleci:vcs_branch' AND tags.value = 'main'")]
    store.create_virtual_tag("stream", by_branch, default_value="development")

    result = report(
        store, group_by=("vtag:stream", "service"), filter="vtags.stream IN ('release')"
    )

    main = credits_by(lambda item: item.service, lambda item: item.branch == "main")
    assert {row["service"]: row["credits"] for row in result.rows} == main
    assert {row["vtag:stream"] for row in result.rows} == {"release"}


def test_unknown_virtual_tags_are_named_with_the_known_ones(store: Store) -> None:
    store.create_virtual_tag("team", TEAMS)

    with pytest.raises(CirclecostError, match=r"no virtual tag 'owner'.*vtag:team"):
        report(store, group_by=("vtag:owner",))
    with pytest.raises(VQLError, match=r"unknown virtual tag 'owner'; virtual tags: team"):
        report(store, filter="vtags.owner = 'x'")


def test_insights_filter_by_a_virtual_tag(store: Store) -> None:
    store.create_virtual_tag("team", TEAMS)
    request = insights.InsightRequest(OCTOBER_PERIOD, filter="vtags.team = 'payments'")

    with store.reader() as connection:
        found = insights.build_insight(connection, "durations", request)

    projects = {row["project"] for row in found.sections[0].rows}
    assert projects
    assert projects <= set(PAYMENTS)


def test_the_focus_export_carries_each_virtual_tag_in_tags(store: Store, tmp_path: Path) -> None:
    store.create_virtual_tag("team", TEAMS)
    output = tmp_path / "focus.parquet"

    with store.reader() as connection:
        focus.export(connection, OCTOBER_PERIOD.start, OCTOBER_PERIOD.end, output)
    rows = duckdb.sql(
        f"SELECT Tags, SubAccountName, ConsumedQuantity FROM read_parquet('{output}')"
    ).fetchall()

    teams: dict[str, Decimal] = {}
    for tags, project, credits in rows:
        team = json.loads(tags)["team"]
        assert team == ("payments" if project in PAYMENTS else
                        "platform" if project in PLATFORM else UNTAGGED)  # fmt: skip
        teams[team] = teams.get(team, Decimal(0)) + credits
    assert teams["payments"] == project_credits(PAYMENTS)


@pytest.mark.parametrize(
    ("inputs", "field", "mentions"),
    [
        ({"key": "Team!", "rules": [{"value": "a", "filter": "costs.account = 'x'"}]},
         "key", "not a virtual tag key"),
        ({"key": "team", "rules": []}, "rules", "at least 1"),
        ({"key": "team", "rules": [{"value": "a", "filter": "costs.acount = 'x'"}]},
         "rules.0.filter", "unknown field 'costs.acount'"),
        ({"key": "team", "rules": [{"value": "a", "filter": "vtags.team = 'a'"}]},
         "rules.0.filter", "unknown virtual tag 'team'"),
        ({"key": "team", "rules": [{"value": UNTAGGED, "filter": "costs.account = 'x'"}]},
         "rules.0.value", "choose another value"),
    ],
)  # fmt: skip
def test_bad_virtual_tag_inputs_name_the_field_and_the_problem(
    inputs: dict[str, Any], field: str, mentions: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        VirtualTagInputs.model_validate(inputs)
    error = raised.value.errors()[0]
    assert ".".join(str(part) for part in error["loc"]) == field
    assert mentions in str(raised.value)


def test_a_store_not_yet_upgraded_to_virtual_tags_still_reports(store: Store) -> None:
    with store.transaction() as connection:  # as a store of schema 6 has it: no virtual_tags
        connection.execute("DROP TABLE virtual_tags")

    result = report(store, group_by=("service",))

    assert result.total["credits"] == credits_by(lambda item: True)[True]
