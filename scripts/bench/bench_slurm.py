"""Benchmark of the Slurm backend (issue 3) against submitit, on the local test cluster.

    sudo scripts/slurm/start.sh            # the single-node cluster (8 CPUs advertised)
    python scripts/bench/bench_slurm.py    # --runs=500 --parallelism=8 by default

Both sides run the same trivial Python function (``x * x``) ``--runs`` times as one Slurm
job array with the same parallelism (``%8``) and the same job settings (50 MB, no GPU,
one CPU, 60 min):

* hpsearch: ``python -m hpsearch --run_cluster --scheduler=slurm --num_jobs=8 ...`` over a
  grid of ``--runs`` points whose sim computes ``x * x`` and writes its summary; wall time
  from the start until ``search_results.csv`` is complete. The driver runs in this process
  so that its polls can be counted (``ClusterBackend.poll`` is wrapped by a counter).
* submitit: ``AutoExecutor(folder=...).map_array(square, range(runs))``, then every
  ``job.result()``. This cluster has no slurmdbd, so submitit's ``sacct`` calls fail
  ("Slurm accounting storage is disabled"); its watcher logs a warning and keeps the
  state UNKNOWN, and ``job.done()`` still ends each wait as soon as the job's result
  pickle exists. So submitit works here by its result files, as hpsearch does by its
  exit files; its warnings are silenced.

Every ``sbatch``, ``squeue``, ``sacct`` and ``scontrol`` call of either side goes through a
counting wrapper put first on PATH (it logs, then ``exec``s the real tool).

Targets: hpsearch sbatch calls <= 2, scheduler queries per poll <= 1 and per second <= 1,
hpsearch wall <= 1.1 x submitit's wall.
"""

from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import installed  # noqa: F401  (the installed hpsearch, not the checkout)

TOOLS = ("sbatch", "squeue", "sacct", "scontrol")

SIM = '''\
import argparse, os
p = argparse.ArgumentParser()
p.add_argument("--out_dir")
p.add_argument("--x", type=int)
a = p.parse_args()
os.makedirs(a.out_dir, exist_ok=True)
with open(os.path.join(a.out_dir, "summary.txt"), "w") as f:
    f.write(f"square {a.x * a.x}\\nfinished 1\\n")
'''

GRID = '''\
grid = {{"x": list(range({runs}))}}
conditions = []
_SCRIPT_NAME = "square_sim.py"
_SUMMARY_FILENAME = "summary.txt"
_SUMMARY_KEYWORDS = ["square", "finished"]
_PERFORMANCE_KEY = "square"
_PERFORMANCE_SORT_ASC = True
'''


def square(x: int) -> int:
    return x * x


def counting_path(tmp: Path) -> Path:
    """A PATH directory of wrappers that log each scheduler call; returns the log file."""
    bin_dir, log = tmp / "bin", tmp / "calls.log"
    bin_dir.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            sys.exit(f"{tool} not found: start the cluster with scripts/slurm/start.sh")
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n'
                                    f'exec "{real}" "$@"\n')
        (bin_dir / tool).chmod(0o755)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return log


def count_calls(log: Path) -> dict[str, int]:
    lines = log.read_text().splitlines() if log.exists() else []
    counts = {tool: sum(ln.startswith(tool + " ") for ln in lines) for tool in TOOLS}
    log.unlink(missing_ok=True)
    return counts


def bench_hpsearch(tmp: Path, runs: int, parallelism: int) -> dict[str, float]:
    from hpsearch.backends.cluster.backend import ClusterBackend
    from hpsearch.cli.app import main

    sim_dir = tmp / "sim"
    sim_dir.mkdir()
    (sim_dir / "square_sim.py").write_text(SIM)
    (sim_dir / "grid_square.py").write_text(GRID.format(runs=runs))
    out_dir = tmp / "hpsearch_out"
    polls = {"polls": 0, "max_queries_per_poll": 0}
    original_poll = ClusterBackend.poll

    def counted_poll(self: ClusterBackend):  # type: ignore[no-untyped-def]
        before = self.calls.scheduler
        ended = original_poll(self)
        polls["polls"] += 1
        polls["max_queries_per_poll"] = max(polls["max_queries_per_poll"],
                                            self.calls.scheduler - before)
        return ended

    ClusterBackend.poll = counted_poll  # type: ignore[method-assign]
    argv = [f"--grid_module={sim_dir / 'grid_square.py'}", f"--run_cwd={sim_dir}",
            f"--out_dir={out_dir}", "--run_cluster", "--scheduler=slurm",
            f"--num_jobs={parallelism}", "--num_hours=1", "--slurm_gres=",
            "--slurm_mem=50M", "--deterministic_search"]
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        saved = sys.stderr
        sys.stderr = devnull  # the progress lines
        try:
            status = main(argv)
        finally:
            sys.stderr = saved
            ClusterBackend.poll = original_poll  # type: ignore[method-assign]
    wall = time.perf_counter() - start
    with open(out_dir / "search_results.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    finished = sum(r["status"] == "finished" and float(r["square"]) == float(r["x"]) ** 2
                   for r in rows)
    if status != 0 or finished != runs:
        sys.exit(f"hpsearch: exit {status}, {finished}/{runs} runs finished correctly")
    return {"wall": wall, **polls}


def bench_submitit(tmp: Path, runs: int, parallelism: int) -> dict[str, float]:
    import submitit

    logging.getLogger("submitit").setLevel(logging.ERROR)  # "Bypassing sacct error ..."
    executor = submitit.AutoExecutor(folder=tmp / "submitit", cluster="slurm")
    executor.update_parameters(timeout_min=60, mem_gb=50 / 1024, cpus_per_task=1,
                               slurm_array_parallelism=parallelism)
    start = time.perf_counter()
    jobs = executor.map_array(square, list(range(runs)))
    results = [job.result() for job in jobs]
    wall = time.perf_counter() - start
    if results != [square(x) for x in range(runs)]:
        sys.exit("submitit: wrong results")
    return {"wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_slurm_"))
    log = counting_path(tmp)
    try:
        ours = bench_hpsearch(tmp, args.runs, args.parallelism)
        ours_calls = count_calls(log)
        theirs = bench_submitit(tmp, args.runs, args.parallelism)
        their_calls = count_calls(log)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    queries = ours_calls["squeue"]
    polls = ours["polls"]
    print(f"{args.runs} trivial runs, array parallelism {args.parallelism}")
    print(f"hpsearch: wall {ours['wall']:.1f} s to the results CSV; sbatch calls "
          f"{ours_calls['sbatch']} (target <= 2); squeue calls {queries} in {polls} polls, "
          f"at most {ours['max_queries_per_poll']} per poll (target 1), "
          f"{queries / polls:.2f} per poll, {queries / ours['wall']:.2f} per second "
          f"(target <= 1); scontrol calls {ours_calls['scontrol']}")
    print(f"submitit: wall {theirs['wall']:.1f} s to the last result; sbatch calls "
          f"{their_calls['sbatch']}, sacct calls {their_calls['sacct']} (failing: no "
          f"accounting), squeue calls {their_calls['squeue']}")
    print(f"ratio hpsearch / submitit wall: {ours['wall'] / theirs['wall']:.3f} "
          "(target <= 1.10)")

if __name__ == "__main__":
    main()
