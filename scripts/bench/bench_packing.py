"""Benchmark of packing (issue 14) on the local test cluster: one run per GPU job, against
``--runs_per_job`` runs packed into each.

    sudo scripts/slurm/start.sh                 # the single-node cluster, 2 fake GPUs
    python scripts/bench/bench_packing.py       # --runs=48 --seconds=2 --runs_per_job=4

Both searches are the real CLI, ``python -m hpsearch --run_cluster --scheduler=slurm
--slurm_gres=gpu:1 --slurm_mem=50M``, over the same grid of ``--runs`` points whose sim
sleeps ``--seconds`` and writes its summary; the second adds ``--runs_per_job``. The node
has two GPUs, so without packing two runs go at once (one per GPU job); with packing each
job's worker runs ``--runs_per_job`` of them at once on its GPU. Wall time runs from the
start of the driver to its exit (every run finished); ``sbatch`` calls are counted by a
wrapper put first on PATH that logs each call and ``exec``s the real tool.

Target: packed wall time at most a third of the unpacked one.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import HPSEARCH

SIM = '''\
import argparse, os, time
p = argparse.ArgumentParser()
p.add_argument("--out_dir")
p.add_argument("--x", type=int)
p.add_argument("--seconds", type=float)
a = p.parse_args()
time.sleep(a.seconds)
os.makedirs(a.out_dir, exist_ok=True)
with open(os.path.join(a.out_dir, "summary.txt"), "w") as f:
    f.write(f"value {a.x}\\nfinished 1\\n")
'''

GRID = '''\
grid = {{"x": list(range({runs})), "seconds": [{seconds!r}]}}
conditions = []
_SCRIPT_NAME = "sleep_sim.py"
_SUMMARY_FILENAME = "summary.txt"
_SUMMARY_KEYWORDS = ["value", "finished"]
_PERFORMANCE_KEY = "value"
_PERFORMANCE_SORT_ASC = True
'''


def counting_path(tmp: Path) -> tuple[Path, Path]:
    """A PATH directory whose ``sbatch`` logs each call, then runs the real one."""
    bin_dir, log = tmp / "bin", tmp / "sbatch_calls.log"
    bin_dir.mkdir()
    real = shutil.which("sbatch")
    if real is None:
        sys.exit("sbatch not found: start the cluster with scripts/slurm/start.sh")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\necho "sbatch $*" >> "{log}"\n'
                                    f'exec "{real}" "$@"\n')
    (bin_dir / "sbatch").chmod(0o755)
    return bin_dir, log


def search(tmp: Path, name: str, runs: int, extra: list[str]) -> tuple[float, int]:
    """Run one search to its end; (wall seconds, sbatch calls)."""
    work = tmp / name
    (work / "sim").mkdir(parents=True)
    (work / "sim" / "sleep_sim.py").write_text(SIM)
    (work / "sim" / "bench_grid.py").write_text(GRID.format(runs=runs, seconds=ARGS.seconds))
    bin_dir, log = counting_path(work)
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONPATH", None)
    out = work / "out"
    argv = [*HPSEARCH, "--grid_module=bench_grid", "--run_cwd=sim",
            f"--out_dir={out}", "--run_cluster", "--scheduler=slurm", "--slurm_gres=gpu:1",
            "--slurm_mem=50M", "--num_hours=1", *extra]
    started = time.monotonic()
    done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True,
                          timeout=3600, check=False)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"{name}: hpsearch exited {done.returncode}:\n{done.stderr[-2000:]}")
    with open(out / "search_results.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    if len(rows) != runs or {r["status"] for r in rows} != {"finished"}:
        sys.exit(f"{name}: not every run finished: {len(rows)} rows")
    return wall, len(log.read_text().splitlines())


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench_packing_") as tmp:
        results: dict[str, list[tuple[float, int]]] = {"one run per job": [], "packed": []}
        for i in range(ARGS.repeat):
            results["one run per job"].append(search(Path(tmp), f"unpacked{i}", ARGS.runs, []))
            results["packed"].append(search(Path(tmp), f"packed{i}", ARGS.runs,
                                            [f"--runs_per_job={ARGS.runs_per_job}"]))
    print(f"{ARGS.runs} runs of {ARGS.seconds:g} s, --slurm_gres=gpu:1 on 2 GPUs, "
          f"{ARGS.repeat} search(es) each")
    walls = {}
    for name, rounds in results.items():
        walls[name] = statistics.median(w for w, _ in rounds)
        label = name if name != "packed" else f"--runs_per_job={ARGS.runs_per_job}"
        print(f"  {label:<22} wall {walls[name]:6.1f} s (median; "
              f"{', '.join(f'{w:.1f}' for w, _ in rounds)})   sbatch calls "
              f"{', '.join(str(c) for _, c in rounds)}")
    ratio = walls["one run per job"] / walls["packed"]
    print(f"  packing is {ratio:.2f}x faster (target: >= 3x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=48)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--runs_per_job", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=1)
    ARGS = parser.parse_args()
    main()
