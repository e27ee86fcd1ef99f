"""Write a large multi-part usage export for measuring the loader.

    .venv/bin/python -m bench.make_big_export OUT_DIR [--rows 1000000] [--parts 4]

Rows are drawn from the two sample parts: plain lines get a fresh JOB_ID and PIPELINE_ID so the
data does not compress unrealistically well; about 1 % of lines are the sample's quoted or
backslash-escaped ones, copied verbatim, so the slow path is exercised at a realistic rate.
"""

import argparse
import gzip
import random
import uuid
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
JOB_ID_FIELD = 24
PIPELINE_ID_FIELD = 10


def sample_lines() -> tuple[str, list[str], list[str]]:
    header = ""
    plain: list[str] = []
    odd: list[str] = []
    for part in sorted(DATA.glob("usage-export-part-*.csv.gz")):
        with gzip.open(part, "rt", encoding="utf-8", newline="") as lines:
            header = next(lines)
            for line in lines:
                is_odd = '"' in line or "\\," in line
                (odd if is_odd else plain).append(line)
    return header, plain, odd


def fresh_ids(line: str, rng: random.Random) -> str:
    fields = line.split(",")
    if fields[JOB_ID_FIELD] != "\\N":
        fields[JOB_ID_FIELD] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    fields[PIPELINE_ID_FIELD] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return ",".join(fields)


def write_part(path: Path, header: str, lines: list[str]) -> None:
    with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=6) as out:
        out.write(header)
        out.writelines(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--parts", type=int, default=4)
    parser.add_argument("--odd-share", type=float, default=0.01)
    args = parser.parse_args()
    rng = random.Random(42)
    header, plain, odd = sample_lines()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    per_part = -(-args.rows // args.parts)
    for index in range(args.parts):
        count = min(per_part, args.rows - index * per_part)
        lines = [
            rng.choice(odd) if rng.random() < args.odd_share else fresh_ids(rng.choice(plain), rng)
            for _ in range(count)
        ]
        write_part(args.out_dir / f"big-part-{index + 1}.csv.gz", header, lines)
        print(f"part {index + 1}: {count} rows")


if __name__ == "__main__":
    main()
