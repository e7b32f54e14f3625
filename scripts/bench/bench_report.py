"""Benchmark ``hpsearch report``: time (whole process) and file size for a synthetic
10 000-run and 1 000-run search. Targets: 10 000 runs <= 5 s and <= 15 MB; 1 000 runs <= 8 MB.

The search directories are written with hpsearch's own writers (a real journal, run
directories with started_at/exit_code, summaries, 20-step learning curves, failures, pruned
runs, 8 GPUs; ``tests/synthetic.py``), not by running 10 000 processes.

    python scripts/bench/bench_report.py [--runs 10000 1000] [--repeat 5] [--keep DIR]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests"))

import synthetic  # noqa: E402
from installed import HPSEARCH  # noqa: E402

TARGETS = {10000: (5.0, 15.0), 1000: (None, 8.0)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[10000, 1000])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the searches here and keep them (default: a temp dir)")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="hpsearch-bench-report-"))
    try:
        for n in args.runs:
            out = root / f"search_{n}"
            if not (out / "journal.jsonl").exists():
                t = time.perf_counter()
                built = synthetic.build(out, n, steps=20, gpus=8)
                print(f"{n} runs: built in {time.perf_counter() - t:.1f} s {built.statuses}")
            cmd = [*HPSEARCH, "report", str(out)]
            times = []
            for _ in range(args.repeat + 1):  # the first one warms the file cache
                t = time.perf_counter()
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                times.append(time.perf_counter() - t)
            size = (out / "report.html").stat().st_size / 1e6
            limit_s, limit_mb = TARGETS.get(n, (None, None))
            print(f"{n} runs: hpsearch report {statistics.median(times[1:]):.2f} s median "
                  f"(min {min(times[1:]):.2f}, max {max(times[1:]):.2f}; target "
                  f"{limit_s or '-'} s), {size:.1f} MB (target {limit_mb or '-'} MB)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
