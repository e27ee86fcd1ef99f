"""The HTML report is one offline file that a real browser renders: chart, legend, totals, table.

It runs headless Chromium (installed once with apt-get when /usr/bin/chromium is missing). The
screenshot is left in pytest's temporary folder and its path printed (`pytest -s` shows it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from circlecost import render, reports

from .conftest import BuildReport

CHROMIUM = Path("/usr/bin/chromium")
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND",  # the report must not need the network
)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        install_chromium()
    return CHROMIUM


def install_chromium() -> None:
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        pytest.fail(f"{CHROMIUM} is missing and apt-get is not available to install chromium")
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt_get, "install", "-y", "--no-install-recommends", "chromium"]
    result = subprocess.run(install, capture_output=True, text=True, env=environment, check=False)
    if result.returncode != 0:  # stale package lists: refresh them once and try again
        subprocess.run([apt_get, "update"], capture_output=True, env=environment, check=False)
        result = subprocess.run(
            install, capture_output=True, text=True, env=environment, check=False
        )
    if result.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(
            f"`apt-get install -y chromium` failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def run_browser(chromium: Path, profile: Path, *arguments: str) -> str:
    result = subprocess.run(
        [str(chromium), *BROWSER_FLAGS, f"--user-data-dir={profile}", *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture
def page(build: BuildReport, tmp_path: Path) -> tuple[reports.Report, Path]:
    # The second half of October by day and branch, beside the 16 days before it.
    second_half = reports.Period(date(2026, 10, 16), date(2026, 10, 31))
    report = build(second_half, group_by=("tag:circleci:vcs_branch",), bin="day")
    path = tmp_path / "report.html"
    path.write_text(render.as_html(report), encoding="utf-8")
    return report, path


def test_the_html_report_needs_nothing_from_the_network(
    page: tuple[reports.Report, Path],
) -> None:
    text = page[1].read_text(encoding="utf-8")

    assert re.findall(r"<(?:script|link|img|iframe)\b", text) == []
    assert re.findall(r"\b(?:src|href)\s*=|url\(|@import", text) == []
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}


def test_the_browser_renders_the_chart_and_the_totals(
    chromium: Path, page: tuple[reports.Report, Path], tmp_path: Path
) -> None:
    report, path = page

    dom = run_browser(chromium, tmp_path / "profile", "--dump-dom", path.as_uri())

    assert '<svg id="cost-chart"' in dom
    costs = [row for row in report.rows if row["amount_usd"] > 0]
    bars = re.findall(r'<rect class="bar"[^>]*data-key="([^"]+)"', dom)
    assert len(bars) == len(costs)
    assert set(bars) == {reports.group_label(row["tag:circleci:vcs_branch"]) for row in costs}
    compared = {row["bin"] for row in report.rows if row["previous_amount_usd"] > 0}
    assert len(re.findall(r'<line class="previous"', dom)) == len(compared)
    for figure in ("amount_usd", "previous_amount_usd"):
        assert f"<b>{render.usd(report.total[figure])}</b>" in dom
    assert f"<b>{render.credits(report.total['credits'])}</b>" in dom
    assert f"<b>{render.change(report.total['change_pct'])}</b>" in dom
    assert dom.count("<tr>") == len(report.rows) + 2  # header and total rows


def test_the_browser_takes_a_screenshot_of_the_report(
    chromium: Path, page: tuple[reports.Report, Path], tmp_path: Path
) -> None:
    screenshot = tmp_path / "report.png"

    run_browser(
        chromium,
        tmp_path / "profile",
        f"--screenshot={screenshot}",
        "--window-size=1200,900",
        page[1].as_uri(),
    )

    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000, "a rendered chart and table, not a blank page"
    print(f"\nHTML report screenshot: {screenshot}")
