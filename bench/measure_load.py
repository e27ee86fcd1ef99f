"""Measure one window load: wall time, rows per second and peak RSS of a fresh process.

    .venv/bin/python -m bench.make_big_export /tmp/big --rows 1000000 --parts 4
    .venv/bin/python -m bench.measure_load /tmp/big [--repeat 3]

Each run loads every `*.csv.gz` of the folder as the parts of one window into a new store in a
temporary folder, in a child process, so that its peak RSS (ru_maxrss) is the load's alone.
"""

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from circlecost.store import Store
from circlecost.windows import Window

WINDOW = Window(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC))


def load_once(parts_dir: Path, store_dir: Path) -> None:
    store = Store(store_dir / "costs.duckdb", writer_kind="measure_load")
    store.migrate()
    integration = store.insert_integration("6513270e-269e-4d37-b2a7-4de452e6b438", "sha256:x")
    parts = sorted(parts_dir.glob("*.csv*"))
    started = time.perf_counter()
    result = store.replace_window_rows(integration.id, WINDOW, "job", parts)
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{result.rows} rows ({result.slow_path_rows} slow path) from {len(parts)} parts: "
        f"{wall:.2f} s wall, {result.rows / wall:,.0f} rows/s, peak RSS {peak_mb:.0f} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("parts_dir", type=Path)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as folder:
            load_once(args.parts_dir, Path(folder))
        return
    for _ in range(args.repeat):
        subprocess.run(
            [sys.executable, "-m", "bench.measure_load", str(args.parts_dir), "--child"],
            check=True,
        )


if __name__ == "__main__":
    main()
