"""`circlecost insights …` and `circlecost metrics` through the command line: the report options,
every format, and OpenMetrics text that a strict parser accepts."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from tests.conftest import Travel
from tests.support import EXPECTED, generated_store

from .conftest import run

OCTOBER = ("--from", "2026-10-01", "--to", "2026-10-31")


@pytest.mark.parametrize("name", ["rightsizing", "waste", "durations"])
def test_each_insight_speaks_every_format(sample_store: Path, tmp_path: Path, name: str) -> None:
    data = json.loads(
        run("--store", str(sample_store), "insights", name, *OCTOBER, "--format", "json").stdout
    )
    assert data["insight"] == name
    assert data["period"] == {"from": "2026-10-01", "to": "2026-10-31"}
    assert all(isinstance(rows, list) for rows in data["sections"].values())
    rows = next(iter(data["sections"].values()))
    assert rows, "the sample has runs"

    table = run("--store", str(sample_store), "insights", name, *OCTOBER)
    assert table.exit_code == 0, table.output
    assert f"{name}: 2026-10-01 .. 2026-10-31" in table.stdout

    text = run("--store", str(sample_store), "insights", name, *OCTOBER, "--format", "csv").stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    first_section = [row for row in parsed if row.get("section", "") in ("", *data["sections"])]
    assert len(first_section) == sum(len(rows) for rows in data["sections"].values())

    page = tmp_path / f"{name}.html"
    written = run(
        "--store", str(sample_store), "insights", name, *OCTOBER, "--format", "html",
        "--output", str(page),
    )  # fmt: skip
    assert written.exit_code == 0, written.output
    assert page.read_text(encoding="utf-8").startswith("<!doctype html>")
    assert "<script" not in page.read_text(encoding="utf-8")


def test_waste_csv_totals_equal_its_json(sample_store: Path) -> None:
    base = (
        "--store",
        str(sample_store),
        "insights",
        "waste",
        *OCTOBER,
        "--default-branch",
        "develop",
    )
    data = json.loads(run(*base, "--format", "json").stdout)
    rows = list(csv.DictReader(io.StringIO(run(*base, "--format", "csv").stdout)))
    branches = [row for row in rows if row["section"] == "branches"]
    assert (
        sum(Decimal(row["default_credits"]) for row in branches)
        == EXPECTED["credits_by_branch"]["develop"]
    )
    assert len(branches) == len(data["sections"]["branches"])


def test_insights_explain_bad_options(sample_store: Path) -> None:
    refused = run("--store", str(sample_store), "insights", "durations", "--period", "last_month",
                  "--filter", "costs.service = 'Compute'")  # fmt: skip
    assert refused.exit_code == 1
    assert "costs.service" in refused.stderr
    assert "hint:" in refused.stderr
    missing = run("--store", str(sample_store), "insights", "waste")
    assert missing.exit_code == 1
    assert "--period" in missing.stderr


def test_metrics_pass_a_strict_openmetrics_parser(
    sample_store: Path, travel: Travel, tmp_path: Path
) -> None:
    travel(datetime(2026, 11, 3, 9, 0, tzinfo=UTC))
    out = tmp_path / "circlecost.prom"
    result = run(
        "--store", str(sample_store), "metrics", "--period", "last_month", "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert text.endswith("# EOF\n")

    families = {family.name: family for family in text_string_to_metric_families(text)}

    assert all(family.type == "gauge" for family in families.values())
    credits = {s.labels["service"]: s.value for s in families["circlecost_credits"].samples}
    assert credits == {
        service: float(value) for service, value in EXPECTED["credits_by_service"].items()
    }
    usd = sum(Decimal(str(s.value)) for s in families["circlecost_cost_usd"].samples)
    assert usd == Decimal(str(EXPECTED["usd_at_0.0006"]))
    (mismatch,) = families["circlecost_total_mismatch_rows"].samples
    assert mismatch.value == EXPECTED["rows_with_total_mismatch"]
    (items,) = families["circlecost_line_items"].samples
    assert items.value == EXPECTED["cost_line_items"]
    windows = {s.labels["state"]: s.value for s in families["circlecost_import_windows"].samples}
    assert windows == {"loaded": 1, "open": 0, "failed": 0}


def test_metrics_of_an_empty_period_still_parse(sample_store: Path, travel: Travel) -> None:
    travel(datetime(2027, 6, 3, 9, 0, tzinfo=UTC))
    text = run("--store", str(sample_store), "metrics").stdout
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert families["circlecost_cost_usd"].samples == []
    assert len(families["circlecost_integration_stable"].samples) == 1


def test_the_html_report_lists_the_right_sizing_suggestions(
    sample_store: Path, tmp_path: Path
) -> None:
    (tmp_path / "generated").mkdir()
    store, _part = generated_store(tmp_path / "generated", "overprovisioned")
    page = tmp_path / "report.html"
    args = ("report", *OCTOBER, "--group-by", "account", "--format", "html", "--output", str(page))
    assert run("--store", str(store.path), *args).exit_code == 0
    suggestions = json.loads(
        run(
            "--store", str(store.path), "insights", "rightsizing", *OCTOBER, "--format", "json"
        ).stdout
    )["sections"]["rightsizing"]
    wanted = [row for row in suggestions if row["suggested_class"]]
    text = page.read_text(encoding="utf-8")
    assert wanted
    assert '<section id="rightsizing">' in text
    assert text.count("over-provisioned; peaks on") == len(wanted)

    # The sample has no over-provisioned job, and a service filter is not an insight's: no section.
    assert run("--store", str(sample_store), *args).exit_code == 0
    assert '<section id="rightsizing">' not in page.read_text(encoding="utf-8")
    assert (
        run("--store", str(store.path), *args, "--filter", "costs.service = 'DLC'").exit_code == 0
    )
    assert '<section id="rightsizing">' not in page.read_text(encoding="utf-8")


def test_anomalies_name_the_spiked_project_in_every_format(tmp_path: Path) -> None:
    store, _part = generated_store(tmp_path, spikes={(date(2026, 10, 22), "billing"): 12})
    late = ("--store", str(store.path), "anomalies", "--from", "2026-10-15", "--to", "2026-10-31")
    data = json.loads(run(*late, "--group-by", "account", "--format", "json").stdout)
    spike = [row for row in data["sections"]["anomalies"] if row["day"] == "2026-10-22"]
    assert [(row["group"], row["top_project"]) for row in spike] == [("billing", "billing")]
    table = run(*late, "--group-by", "account")
    assert table.exit_code == 0, table.output
    assert "2026-10-22" in table.stdout
    assert "billing" in table.stdout
    bad = run(*late, "--group-by", "colour")
    assert bad.exit_code == 1
    assert "--group-by" in bad.stderr


def test_a_daily_html_report_marks_the_anomalies_on_its_chart(tmp_path: Path) -> None:
    store, _part = generated_store(tmp_path, spikes={(date(2026, 10, 22), "billing"): 12})
    page = tmp_path / "report.html"
    late = ("--store", str(store.path), "report", "--from", "2026-10-15", "--to", "2026-10-31")
    written = run(*late, "--group-by", "account", "--bin", "day", "--format", "html",
                  "--output", str(page))  # fmt: skip
    assert written.exit_code == 0, written.output
    marks = re.findall(r'<path class="anomaly" data-bin="([0-9-]+)"', page.read_text("utf-8"))
    found = json.loads(
        run("--store", str(store.path), "anomalies", "--from", "2026-10-15", "--to", "2026-10-31",
            "--group-by", "account", "--format", "json").stdout
    )["sections"]["anomalies"]  # fmt: skip
    assert "2026-10-22" in marks
    assert sorted(marks) == sorted({row["day"] for row in found})
    weekly = run(*late, "--group-by", "account", "--bin", "week", "--format", "html",
                 "--output", str(page))  # fmt: skip
    assert weekly.exit_code == 0
    assert 'class="anomaly"' not in page.read_text("utf-8")
