"""Benchmarks (`make bench`): import speed and memory against a pandas baseline, report speed.

    .venv/bin/python -m tests.bench [--rows 1000000] [--parts 4] [--runs 3] [--baseline-runs 2]

Import: the emulator's bulk generator (provider/emulator/bulk.py) writes a usage export, and
each run loads it through the real store (`Store.replace_window_rows`) into a new store, in a
fresh child process, so that the peak RSS it reports is the load's own. Baseline: pandas
`read_csv` of the same parts (escapechar and `\\N` as NULL; parse only, each part's frame
dropped once counted), also in a child. Then the report benchmark (tests/bench_reports.py).

Benchmarks print figures; a missed target never fails the run (tests never assert wall times).
The run fails only when the store does not account for every row written: its row count and
its sum of TOTAL_CREDITS must equal those of the generated files, read back here with Python's
csv module, independently of the loader.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

TARGET_SECONDS_PER_MILLION = 3.0
TARGET_PEAK_RSS_MB = 600.0
MONTH = date(2026, 10, 1)  # fixed, so that every run generates the same bytes
SEED = 0


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
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, parts_dir, work_dir = args.child
        if kind == "import":
            run = _child_import(Path(parts_dir), Path(work_dir))
        else:
            run = _child_pandas(Path(parts_dir))
        print(json.dumps({**run.__dict__, "total_credits": str(run.total_credits)}))
        return 0
    accounted = import_benchmark(args.rows, args.parts, args.runs, args.baseline_runs)
    if not args.no_reports:
        print()
        report_benchmark()
    return 0 if accounted else 1


def import_benchmark(rows: int, parts: int, runs: int, baseline_runs: int) -> bool:
    """Prints the import figures against the baseline; True if every row is accounted for."""
    from provider.emulator.bulk import write_bulk_export

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
        baselines = [_run_child("pandas", work, number) for number in range(1, baseline_runs + 1)]
    _print_runs("store import", imports)
    _print_runs("pandas read_csv", baselines)
    _print_table(rows, imports, baselines)
    if written.rows != rows:
        print(
            f"ROWS NOT ACCOUNTED FOR: the generator was asked for {rows:,} rows and wrote "
            f"{written.rows:,}"
        )
        return False
    return _print_accounting(written, imports)


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


def _run_child(kind: str, work: Path, number: int) -> Run | None:
    """Runs one measurement in a fresh interpreter; None (after saying why) if it failed."""
    store_dir = work / f"{kind}-{number}"
    store_dir.mkdir()
    command = [sys.executable, "-m", "tests.bench", "--child", kind, str(work / "parts")]
    completed = subprocess.run(
        [*command, str(store_dir)], capture_output=True, text=True, check=False
    )
    for path in sorted(store_dir.glob("*"), reverse=True):  # free the disk between runs
        path.unlink()
    if completed.returncode != 0:
        print(f"{kind} run {number} failed:\n{completed.stderr.strip()}")
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


def _print_table(rows: int, imports: list[Run | None], baselines: list[Run | None]) -> None:
    target_s = TARGET_SECONDS_PER_MILLION * rows / 1_000_000
    print()
    print(f"{'':34}{'wall':>9}{'rows/s':>11}{'CPU':>8}{'peak RSS':>11}")
    for label, runs in (("circlecost import (best run)", imports), ("pandas read_csv", baselines)):
        done = [run for run in runs if run is not None]
        if not done:
            print(f"{label:34}{'failed':>9}")
            continue
        best = min(done, key=lambda run: run.wall_s)
        median = statistics.median(run.wall_s for run in done)
        print(
            f"{label:34}{best.wall_s:>7.2f} s{rows / best.wall_s:>11,.0f}{best.cpu_s:>6.1f} s"
            f"{max(run.peak_rss_mb for run in done):>8.0f} MB"
            f"   (median {median:.2f} s of {len(done)})"
        )
    done = [run for run in imports if run is not None]
    if done:
        best_s = min(run.wall_s for run in done)
        peak = max(run.peak_rss_mb for run in done)
        print(
            f"targets for {rows:,} rows: wall <= {target_s:.1f} s: "
            f"{'PASS' if best_s <= target_s else 'MISS'} ({best_s:.2f} s); "
            f"peak RSS <= {TARGET_PEAK_RSS_MB:.0f} MB: "
            f"{'PASS' if peak <= TARGET_PEAK_RSS_MB else 'MISS'} ({peak:.0f} MB)"
        )


def _print_accounting(written: Written, imports: list[Run | None]) -> bool:
    """Checks every import run against the files; prints the verdict."""
    done = [run for run in imports if run is not None]
    wrong = [
        run
        for run in done
        if (run.rows, run.total_credits) != (written.rows, written.total_credits)
    ]
    for run in wrong:
        print(
            f"ROWS NOT ACCOUNTED FOR: a store holds {run.rows:,} rows with TOTAL_CREDITS "
            f"{run.total_credits}; the files hold {written.rows:,} rows with TOTAL_CREDITS "
            f"{written.total_credits}"
        )
    if len(done) < len(imports) or not done:
        print("ROWS NOT ACCOUNTED FOR: an import run failed (see above)")
        return False
    if not wrong:
        print(
            f"every row accounted for, in each of {len(done)} runs: {written.rows:,} rows in "
            f"the store = rows written, TOTAL_CREDITS {written.total_credits:,} = the files' "
            f"sum ({done[0].slow_path_rows:,} rows took the slow path)"
        )
    return not wrong


def report_benchmark() -> None:
    if importlib.util.find_spec("tests.bench_reports") is None:
        print("report benchmark missing: tests/bench_reports.py does not exist yet")
        return
    importlib.import_module("tests.bench_reports").run_report_benchmark()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- the children -----------------------------------------------------------------------------


def _child_import(parts_dir: Path, store_dir: Path) -> Run:
    from provider.emulator.organizations import default_organizations
    from provider.store import Store
    from provider.windows import Window

    store = Store(store_dir / "costs.duckdb", writer_kind="bench")
    store.migrate()
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


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


if __name__ == "__main__":
    sys.exit(main())
