"""Benchmarks (`make bench`): import speed and memory against a pandas baseline, report speed,
each on both store engines: embedded (one DuckDB file) and shared (DuckLake: a PostgreSQL
catalog and a directory of Parquet files), with the ratio shared/embedded.

    .venv/bin/python -m bench.import_bench [--rows 1000000] [--parts 4] [--runs 3]
        [--baseline-runs 2] [--report-rows-millions 10]

Import: the emulator's bulk generator (emulator/circlecost_emulator/bulk.py) writes a usage export,
and each run loads it through the real store (`Store.replace_window_rows`) into a new store, in a
fresh child process, so that the peak RSS it reports is the load's own: `--runs` runs into a new
embedded store each, then as many into a new shared store each (a fresh catalog database and data
directory per run). Baseline: pandas `read_csv` of the same parts (escapechar and `\\N` as NULL;
parse only, each part's frame dropped once counted), also in a child. Floor: DuckDB's own typed
read of the same parts (`read_csv` with the store's 48 column types) into a table of a new DuckDB
file, with no bookkeeping: what a load into DuckDB costs at the least. DuckDB cannot read the
export's dialect (it refuses `\\` as escape with `\\N` as NULL), so the floor skips the lines it
cannot read (about 0.3 %) and says how many rows it kept. Then the report benchmark
(bench/reports_bench.py), on a store of each engine.

The shared store's catalog lives in one throwaway PostgreSQL server (tests/services.py), started
here for the whole run and stopped at its end; the children only get a connection string. With
no PostgreSQL server binaries on the machine, the shared-engine figures are skipped (one line
says so) and the embedded ones are measured as ever.

The run ends with one summary table: every figure (import and queries, both engines) with its
target, its baseline and the ratio. Benchmarks print figures; a missed target never fails the run
(tests never assert wall times).
The run fails only when a store (of either engine) does not account for every row written: its
row count and its sum of TOTAL_CREDITS must equal those of the generated files, read back here
with Python's csv module, independently of the loader.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.services import PostgresServer, ServiceError, find_postgres_bin

if TYPE_CHECKING:
    from circlecost.store import Store

TARGET_SECONDS_PER_MILLION = 3.0
TARGET_CPU_SECONDS_PER_MILLION = 5.0
TARGET_SHARE_OF_PANDAS = 0.5  # at least twice as fast as pandas read_csv of the same parts
TARGET_PEAK_RSS_MB = 600.0
MONTH = date(2026, 10, 1)  # fixed, so that every run generates the same bytes
SEED = 0
LABEL_WIDTH = 38


@dataclass(frozen=True)
class Written:
    """What the generated files hold, counted without the loader."""

    rows: int
    total_credits: Decimal


@dataclass(frozen=True)
class Run:
    """One child process's figures."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    rows: int
    total_credits: Decimal | None = None  # import runs: the sum in the store
    slow_path_rows: int = 0


# --- the parent -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--runs", type=int, default=3, help="import runs (best is compared)")
    parser.add_argument("--baseline-runs", type=int, default=2)
    parser.add_argument("--no-reports", action="store_true", help="skip the report benchmark")
    parser.add_argument(
        "--report-rows-millions",
        type=float,
        default=10.0,
        help="line items of the report benchmark's stores, in millions",
    )
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--catalog", help=argparse.SUPPRESS)  # a shared import child's catalog
    args = parser.parse_args(argv)
    if args.child:
        kind, parts_dir, work_dir = args.child
        return _child_main(kind, Path(parts_dir), Path(work_dir), args.catalog)
    with postgres_server() as server:
        accounted, summary = import_benchmark(
            args.rows, args.parts, args.runs, args.baseline_runs, server
        )
        if not args.no_reports:
            print()
            summary += query_summary(report_benchmark(args.report_rows_millions, server))
    print_summary(summary)
    return 0 if accounted else 1


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer | None]:
    """A throwaway PostgreSQL server for shared stores' catalogs, stopped at the end; None
    (after one line saying why) if there is none to be had."""
    bin_dir = find_postgres_bin()
    if bin_dir is None:
        print(
            "shared-engine figures skipped: no PostgreSQL server binaries (initdb, pg_ctl, "
            "postgres) found; apt-get install postgresql"
        )
        yield None
        return
    try:
        server = PostgresServer.start(bin_dir)
    except ServiceError as err:
        print(f"shared-engine figures skipped: {str(err).splitlines()[0]}")
        yield None
        return
    try:
        yield server
    finally:
        server.stop()


def new_store(folder: Path, catalog: str | None) -> Store:
    """A new, empty store in `folder`: an embedded DuckDB file, or, given its catalog's libpq
    string, a shared store whose Parquet data lives in `folder`."""
    from circlecost.engine import SharedStore
    from circlecost.store import Store

    if catalog is None:
        store = Store(folder / "costs.duckdb", writer_kind="bench")
        store.migrate()
    else:
        store = Store(SharedStore(catalog, f"{folder.absolute()}/"), writer_kind="bench")
        store.initialize("bench")
    return store


def import_benchmark(
    rows: int, parts: int, runs: int, baseline_runs: int, server: PostgresServer | None
) -> tuple[bool, list[SummaryRow]]:
    """Prints the import figures of both engines against the baseline; True if every row is
    accounted for in every store, and the import's rows of the summary."""
    from circlecost_emulator.bulk import write_bulk_export

    with tempfile.TemporaryDirectory(prefix="circlecost-bench-") as folder:
        work = Path(folder)
        started = time.perf_counter()
        paths = write_bulk_export(work / "parts" / "export", rows, parts, SEED, month=MONTH)
        generated_s = time.perf_counter() - started
        size_mb = sum(path.stat().st_size for path in paths) / 1e6
        print(
            f"import benchmark: {rows:,} rows in {parts} gzip parts ({size_mb:.0f} MB), "
            f"written by the emulator's bulk generator in {generated_s:.1f} s; "
            f"{_cores()} cores"
        )
        written = count_written(paths)
        imports = [_run_child("import", work, number) for number in range(1, runs + 1)]
        shared = _shared_imports(work, runs, server)
        baselines = [_run_child("pandas", work, number) for number in range(1, baseline_runs + 1)]
        floors = [_run_child("duckdb", work, number) for number in range(1, baseline_runs + 1)]
    _print_runs("store import", imports)
    _print_runs("store import, shared", shared)
    _print_runs("pandas read_csv", baselines)
    _print_runs("DuckDB read_csv into a table", floors)
    _print_table(rows, imports, shared, baselines, floors)
    summary = import_summary(rows, {"embedded": imports, "shared": shared}, baselines, floors)
    if written.rows != rows:
        print(
            f"ROWS NOT ACCOUNTED FOR: the generator was asked for {rows:,} rows and wrote "
            f"{written.rows:,}"
        )
        return False, summary
    return _print_accounting(written, {"embedded": imports, "shared": shared}), summary


def _shared_imports(work: Path, runs: int, server: PostgresServer | None) -> list[Run | None]:
    """The import runs into shared stores, each with a fresh catalog database; none without a
    server."""
    if server is None:
        return []
    return [
        _run_child("import", work, number, server.fresh_database("bench_import"))
        for number in range(1, runs + 1)
    ]


def count_written(paths: list[Path]) -> Written:
    """Rows and the TOTAL_CREDITS sum of the files, read with the csv module (not the loader).

    The csv module's escapechar reads both of the dialect's escapes (`\\,` and quoted fields);
    `\\N` would read as "N", but the generator never writes a NULL total.
    """
    rows, total = 0, Decimal(0)
    for path in paths:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as text:
            reader = csv.reader(text, escapechar="\\", strict=True)
            column = next(reader).index("TOTAL_CREDITS")
            for record in reader:
                if record:
                    rows += 1
                    total += Decimal(record[column])
    return Written(rows, total)


def _run_child(kind: str, work: Path, number: int, catalog: str | None = None) -> Run | None:
    """Runs one measurement in a fresh interpreter; None (after saying why) if it failed.

    Given a catalog (a libpq string), an import goes into a new shared store with that
    catalog and its data in a folder of its own.
    """
    name = f"{kind}-{number}" if catalog is None else f"{kind}-shared-{number}"
    store_dir = work / name
    store_dir.mkdir()
    command = [sys.executable, "-m", "bench.import_bench", "--child", kind, str(work / "parts")]
    command.append(str(store_dir))
    if catalog is not None:
        command += ["--catalog", catalog]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    shutil.rmtree(store_dir, ignore_errors=True)  # free the disk between runs
    if completed.returncode != 0:
        print(f"{name} run failed:\n{completed.stderr.strip()}")
        return None
    figures = json.loads(completed.stdout.strip().splitlines()[-1])
    total = figures.pop("total_credits")
    return Run(**figures, total_credits=None if total == "None" else Decimal(total))


def _print_runs(label: str, runs: list[Run | None]) -> None:
    for number, run in enumerate(runs, 1):
        if run is not None:
            print(
                f"  {label} run {number}: {run.wall_s:.2f} s wall, {run.cpu_s:.1f} s CPU, "
                f"peak RSS {run.peak_rss_mb:.0f} MB"
            )


def _print_table(
    rows: int,
    imports: list[Run | None],
    shared: list[Run | None],
    baselines: list[Run | None],
    floors: list[Run | None],
) -> None:
    print()
    print(f"{'':{LABEL_WIDTH}}{'wall':>9}{'rows/s':>11}{'CPU':>8}{'peak RSS':>11}")
    _print_row(rows, "circlecost import (best run)", imports)
    if shared:
        _print_row(rows, "circlecost import, shared (best run)", shared)
    _print_row(rows, "pandas read_csv", baselines)
    _print_row(rows, "floor: DuckDB read_csv into a table", floors)
    embedded_best, shared_best = _best(imports), _best(shared)
    if embedded_best is not None and shared_best is not None:
        print(
            f"shared/embedded: {shared_best.wall_s / embedded_best.wall_s:.2f}× wall, "
            f"{shared_best.cpu_s / embedded_best.cpu_s:.2f}× CPU (best runs)"
        )
    _print_ratios(embedded_best, _best(baselines), _best(floors))


def _print_ratios(imported: Run | None, pandas: Run | None, floor: Run | None) -> None:
    """The embedded import against pandas (the target: at least 2× faster) and the floor."""
    if imported is None or pandas is None or floor is None:
        return
    print(
        f"embedded import: {pandas.wall_s / imported.wall_s:.2f}× pandas's speed "
        f"(target >= 2×); {imported.wall_s / floor.wall_s:.2f}× the floor's wall, "
        f"{imported.cpu_s / floor.cpu_s:.2f}× its CPU; the floor kept {floor.rows:,} rows"
    )


def _best(runs: list[Run | None]) -> Run | None:
    """The run with the shortest wall time; None if none finished."""
    return min((run for run in runs if run is not None), key=lambda run: run.wall_s, default=None)


def _print_row(rows: int, label: str, runs: list[Run | None]) -> None:
    done = [run for run in runs if run is not None]
    best = _best(runs)
    if best is None:
        print(f"{label:{LABEL_WIDTH}}{'failed':>9}")
        return
    median = statistics.median(run.wall_s for run in done)
    print(
        f"{label:{LABEL_WIDTH}}{best.wall_s:>7.2f} s{rows / best.wall_s:>11,.0f}"
        f"{best.cpu_s:>6.1f} s{max(run.peak_rss_mb for run in done):>8.0f} MB"
        f"   (median {median:.2f} s of {len(done)})"
    )


def _print_accounting(written: Written, engines: dict[str, list[Run | None]]) -> bool:
    """Checks every import run of every engine against the files; prints the verdict."""
    done = {engine: [run for run in runs if run is not None] for engine, runs in engines.items()}
    wrong = [
        (engine, run)
        for engine, runs in done.items()
        for run in runs
        if (run.rows, run.total_credits) != (written.rows, written.total_credits)
    ]
    for engine, run in wrong:
        print(
            f"ROWS NOT ACCOUNTED FOR: a store ({engine}) holds {run.rows:,} rows with "
            f"TOTAL_CREDITS {run.total_credits}; the files hold {written.rows:,} rows with "
            f"TOTAL_CREDITS {written.total_credits}"
        )
    failed = [engine for engine, runs in engines.items() if len(done[engine]) < len(runs)]
    if failed:
        print(f"ROWS NOT ACCOUNTED FOR: an import run failed ({', '.join(failed)}; see above)")
        return False
    if not done["embedded"]:
        print("ROWS NOT ACCOUNTED FOR: no import run")
        return False
    if not wrong:
        counts = " and ".join(f"{len(runs)} {engine}" for engine, runs in done.items() if runs)
        print(
            f"every row accounted for, in each of {counts} runs: {written.rows:,} rows in the "
            f"store = rows written, TOTAL_CREDITS {written.total_credits:,} = the files' sum "
            f"({done['embedded'][0].slow_path_rows:,} rows took the slow path)"
        )
    return not wrong


def report_benchmark(rows_millions: float, server: PostgresServer | None) -> dict[str, Any]:
    """The report benchmark (bench/reports_bench.py) on an embedded store and, with a server,
    on a shared one; its figures by engine."""
    from bench.reports_bench import run_report_benchmark

    catalog = server.fresh_database("bench_reports") if server is not None else None
    return run_report_benchmark(rows_millions, catalog)


# --- the summary: every figure against its target, in one table -------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """One line of the summary: a figure, its target, its baseline (each with its unit)."""

    name: str
    figure: float
    unit: str
    target: float | None  # None: no target, a figure to compare only
    baseline: float | None

    @property
    def ratio(self) -> float | None:
        return self.figure / self.baseline if self.baseline else None

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        return "met" if self.figure <= self.target else "MISSED"


def import_summary(
    rows: int,
    engines: dict[str, list[Run | None]],
    baselines: list[Run | None],
    floors: list[Run | None],
) -> list[SummaryRow]:
    """The import's targets for each engine's best run: wall and CPU against pandas, peak RSS,
    and the wall against DuckDB's own typed read (the floor)."""
    pandas, floor = _best(baselines), _best(floors)
    target_s = TARGET_SECONDS_PER_MILLION * rows / 1_000_000
    target_cpu_s = TARGET_CPU_SECONDS_PER_MILLION * rows / 1_000_000
    summary: list[SummaryRow] = []
    for engine, runs in engines.items():
        best = _best(runs)
        if best is None:
            continue
        peak = max(run.peak_rss_mb for run in runs if run is not None)
        label = f"import {rows / 1e6:g}M rows, {engine}"
        summary.append(SummaryRow(f"{label}: wall", best.wall_s, "s", target_s, _wall(pandas)))
        if pandas is not None:
            share = best.wall_s / pandas.wall_s
            summary.append(
                SummaryRow(
                    f"{label}: wall, share of pandas's", share, "×", TARGET_SHARE_OF_PANDAS, None
                )
            )
        summary += [
            SummaryRow(f"{label}: CPU", best.cpu_s, "s", target_cpu_s, _cpu(pandas)),
            SummaryRow(f"{label}: peak RSS", peak, "MB", TARGET_PEAK_RSS_MB, None),
            SummaryRow(f"{label}: wall against the floor", best.wall_s, "s", None, _wall(floor)),
        ]
    return summary


def _wall(run: Run | None) -> float | None:
    return None if run is None else run.wall_s


def _cpu(run: Run | None) -> float | None:
    return None if run is None else run.cpu_s


def query_summary(figures: dict[str, Any]) -> list[SummaryRow]:
    """Each query of the report benchmark, by engine, against its target and plain baseline."""
    return [
        SummaryRow(
            f"{row['query']}, {engine}", row["ms"], "ms", row["target_ms"], row["baseline_ms"]
        )
        for engine, engine_figures in figures.items()
        for row in engine_figures["rows"]
    ]


def print_summary(summary: list[SummaryRow]) -> None:
    """The one table of `make bench`: figure, target, baseline, ratio (figure / baseline)."""
    if not summary:
        return
    width = max(len(row.name) for row in summary) + 2
    print(
        "\nsummary: every figure against its target. Baseline: pandas read_csv of the same parts\n"
        "(import wall and CPU), DuckDB's own typed read into a table (against the floor), a\n"
        "plain query over the same rows (queries); ratio = figure / baseline"
    )
    print(f"{'figure':{width}}{'value':>11}{'target':>11}{'baseline':>11}{'ratio':>8}")
    for row in summary:
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}×"
        print(
            f"{row.name:{width}}{_amount(row.figure, row.unit):>11}"
            f"{_amount(row.target, row.unit):>11}{_amount(row.baseline, row.unit):>11}"
            f"{ratio:>8}  {row.verdict}"
        )


def _amount(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "MB":
        return f"{value:.0f} MB"
    if unit == "×":
        return f"{value:.2f}×"
    return f"{value:.2f} s"


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- the children -----------------------------------------------------------------------------


def _child_main(kind: str, parts_dir: Path, work_dir: Path, catalog: str | None) -> int:
    """Runs one measurement and prints its figures as JSON, the parent's last line to read."""
    if kind == "import":
        run = _child_import(parts_dir, work_dir, catalog)
    elif kind == "duckdb":
        run = _child_duckdb(parts_dir, work_dir)
    else:
        run = _child_pandas(parts_dir)
    print(json.dumps({**run.__dict__, "total_credits": str(run.total_credits)}))
    return 0


def _child_import(parts_dir: Path, store_dir: Path, catalog: str | None) -> Run:
    """Loads the parts into a new store in `store_dir` (shared, given its catalog)."""
    from circlecost.windows import Window
    from circlecost_emulator.organizations import default_organizations

    store = new_store(store_dir, catalog)
    organization = default_organizations(SEED)[0]
    integration = store.insert_integration(organization.id, "sha256:bench")
    window = Window(
        datetime(MONTH.year, MONTH.month, 1, tzinfo=UTC),
        datetime(MONTH.year, MONTH.month, 31, 23, 59, 59, tzinfo=UTC),
    )
    parts = sorted(parts_dir.glob("*.csv.gz"))
    started, cpu = time.perf_counter(), _cpu_seconds()
    result = store.replace_window_rows(integration.id, window, "bench-job", parts)
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    peak = _peak_rss_mb()  # before the check below, which is not part of the load
    with store.reader() as con:
        row = con.execute(
            "SELECT count(*), sum(TOTAL_CREDITS) FROM usage WHERE integration_id = ?",
            [integration.id],
        ).fetchone()
    assert row is not None
    return Run(wall, cpu, peak, int(row[0]), Decimal(row[1]), result.slow_path_rows)


def _child_pandas(parts_dir: Path) -> Run:
    import warnings

    import pandas as pd

    warnings.simplefilter("ignore")  # mixed-type columns warn; the figures are what matter
    rows = 0
    started, cpu = time.perf_counter(), _cpu_seconds()
    for path in sorted(parts_dir.glob("*.csv.gz")):
        frame = pd.read_csv(path, escapechar="\\", na_values=["\\N"])
        rows += len(frame)
        del frame
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    return Run(wall, cpu, _peak_rss_mb(), rows)


def _child_duckdb(parts_dir: Path, work_dir: Path) -> Run:
    """DuckDB's own typed read of the parts into a table: the floor of any load into DuckDB.

    Same threads and insertion-order setting as the loader, DuckDB's default memory limit.
    """
    import duckdb

    from circlecost.engine import sql_string
    from circlecost.usage_columns import USAGE_COLUMNS

    columns = ", ".join(f"{sql_string(name)}: {sql_string(kind)}" for name, kind in USAGE_COLUMNS)
    files = ", ".join(sql_string(str(path)) for path in sorted(parts_dir.glob("*.csv.gz")))
    con = duckdb.connect(str(work_dir / "floor.duckdb"))
    con.execute("SET preserve_insertion_order = false")
    started, cpu = time.perf_counter(), _cpu_seconds()
    con.execute(
        f"CREATE TABLE usage AS SELECT * FROM read_csv([{files}], columns = {{{columns}}}, "
        "header = true, auto_detect = false, delim = ',', quote = '\"', nullstr = '\\N', "
        "ignore_errors = true)"
    )
    wall, cpu = time.perf_counter() - started, _cpu_seconds() - cpu
    peak = _peak_rss_mb()
    row = con.execute("SELECT count(*) FROM usage").fetchone()
    con.close()
    assert row is not None
    return Run(wall, cpu, peak, int(row[0]))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


if __name__ == "__main__":
    sys.exit(main())
