"""`make bench`: import speed and memory against a pandas baseline, then the report benchmark.

The import benchmark writes a 1M-row export with the emulator's bulk generator, then, each in a
fresh child process so that peak RSS belongs to that run alone:
- circlecost: `Store.replace_window_rows` of every part into a new store (parse, type, insert,
  commit);
- baseline: pandas `read_csv` of the same parts (`escapechar='\\'`, `na_values=['\\N']`),
  parse only.
Every row must be accounted for: the store's row count and TOTAL_CREDITS sum must equal what
pandas parsed. Figures are printed, never asserted; only wrong accounting exits non-zero.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROWS = int(os.environ.get("CIRCLECOST_BENCH_ROWS", "1000000"))  # smaller for a quick try
PARTS = 4
TARGET_SECONDS = 3.0
TARGET_MB = 600.0
MONTH = date(2026, 10, 1)


def child_circlecost(parts: list[Path], folder: Path) -> dict[str, Any]:
    from provider.store import Store
    from provider.windows import Window

    window = Window(
        datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)
    )
    store = Store(folder / "bench.duckdb", writer_kind="make bench")
    store.migrate()
    integration = store.insert_integration("6513270e-269e-4d37-b2a7-4de452e6b438", "sha256:bench")
    store.plan_windows(integration.id, [window])
    started = time.perf_counter()
    result = store.replace_window_rows(integration.id, window, "bench", parts)
    wall = time.perf_counter() - started
    with store.reader() as con:
        count, total = con.execute("SELECT count(*), sum(TOTAL_CREDITS) FROM usage").fetchone()  # type: ignore[misc]
    return {
        "wall": wall,
        "rows": int(count),
        "loaded": result.rows,
        "total": str(total),
        "slow": result.slow_path_rows,
    }


def child_pandas(parts: list[Path]) -> dict[str, Any]:
    import pandas as pd

    started = time.perf_counter()
    rows = 0
    total = 0.0
    for part in parts:
        frame = pd.read_csv(
            part, escapechar="\\", na_values=["\\N"], keep_default_na=False, low_memory=False
        )
        rows += len(frame)
        total += float(frame["TOTAL_CREDITS"].fillna(0).sum())
    return {"wall": time.perf_counter() - started, "rows": rows, "total": total}


def run_child(kind: str, parts: list[Path], folder: Path) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, "-m", "tests.bench", "--child", kind, str(folder), *map(str, parts)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(output.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def child_main(kind: str, folder: Path, parts: list[Path]) -> None:
    figures = child_circlecost(parts, folder) if kind == "circlecost" else child_pandas(parts)
    figures["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(figures))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def import_benchmark() -> bool:
    from provider.emulator import write_bulk_export

    with tempfile.TemporaryDirectory(prefix="circlecost-bench-") as scratch:
        folder = Path(scratch)
        started = time.perf_counter()
        parts = write_bulk_export(folder / "export", ROWS, parts=PARTS, seed=3, month=MONTH)
        print(f"generated {ROWS:,} rows in {PARTS} parts in {time.perf_counter() - started:.1f} s")
        ours = run_child("circlecost", parts, folder)
        baseline = run_child("pandas", parts, folder)
    print()
    print(f"{f'import of {ROWS:,} rows':<28}{'wall':>9}{'rows/s':>12}{'peak RSS':>11}")
    for name, figures in (("circlecost (store)", ours), ("pandas read_csv (baseline)", baseline)):
        rate = figures["rows"] / figures["wall"]
        print(f"{name:<28}{figures['wall']:>8.2f}s{rate:>12,.0f}{figures['peak_mb']:>9.0f}MB")
    print(
        f"targets: wall <= {TARGET_SECONDS:.0f} s {verdict(ours['wall'] <= TARGET_SECONDS)}, "
        f"peak RSS <= {TARGET_MB:.0f} MB {verdict(ours['peak_mb'] <= TARGET_MB)}; "
        f"slow-path rows: {ours['slow']:,}"
    )
    accounted = ours["rows"] == ROWS == baseline["rows"] and abs(
        float(ours["total"]) - baseline["total"]
    ) < 1e-6 * max(1.0, baseline["total"])
    print(
        f"accounting: store {ours['rows']:,} rows, TOTAL_CREDITS {ours['total']}; "
        f"pandas {baseline['rows']:,} rows, {baseline['total']:.0f} -> "
        f"{'OK' if accounted else 'WRONG'}"
    )
    return accounted


def report_benchmark() -> None:
    try:
        from tests.bench_reports import run_report_benchmark
    except ImportError:
        print("report benchmark: tests/bench_reports.py is missing")
        return
    print()
    run_report_benchmark()


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child_main(argv[1], Path(argv[2]), [Path(p) for p in argv[3:]])
        return 0
    accounted = import_benchmark()
    if os.environ.get("CIRCLECOST_BENCH_SKIP_REPORTS") != "1":
        report_benchmark()
    return 0 if accounted else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
