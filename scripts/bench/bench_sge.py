"""Benchmark of the Grid Engine backend (issue 23) on the local test cell.

    sudo scripts/sge/start.sh            # the single-node cell (8 slots)
    python scripts/bench/bench_sge.py    # --runs=500 --parallelism=8 by default

Both sides run the same trivial Python sim (``x * x``, written to its summary) ``--runs`` times
as one Grid Engine array job with the same parallelism (``-tc 8``) and the same job settings
(no GPU, one slot, one hour):

* hpsearch: ``python -m hpsearch --run_cluster --scheduler=sge --num_jobs=8 ...`` over a grid
  of ``--runs`` points; wall time from the start until ``search_results.csv`` is complete.
  The driver runs in this process so that its polls can be counted (``ClusterBackend.poll``
  is wrapped by a counter).
* the dispatch limit: the same sim as a bare array job, ``qsub -sync y -t 1-N -tc 8`` of a
  script that runs task ``$SGE_TASK_ID``'s point; wall time until qsub returns (Grid Engine
  says the array ended). It measures what the scheduler itself takes to dispatch and reap the
  tasks, with nothing of hpsearch's around them.

Every ``qsub``, ``qstat``, ``qacct``, ``qalter`` and ``qdel`` call of hpsearch goes through a
counting wrapper put first on PATH (it logs, then ``exec``s the real tool).

Targets: qsub calls <= 2 (the check ``qsub -w v`` and the one array), scheduler queries per
poll <= 1 and per second <= 1, hpsearch wall <= 1.1 x the bare array's wall.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import installed  # noqa: F401  (the installed hpsearch, not the checkout)

TOOLS = ("qsub", "qstat", "qacct", "qalter", "qdel")

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

#: the bare array: task t runs the sim on point t - 1, as hpsearch's task t does
BARE = '''\
#!/bin/sh
#$ -S /bin/sh
#$ -N bench-bare
#$ -o /dev/null
#$ -e /dev/null
#$ -l h_rt=1:00:00
cd {sim_dir} && exec {python} square_sim.py --out_dir={out}/$SGE_TASK_ID --x=$(($SGE_TASK_ID - 1))
'''


def counting_path(tmp: Path) -> Path:
    """A PATH directory of wrappers that log each scheduler call; returns the log file."""
    bin_dir, log = tmp / "bin", tmp / "calls.log"
    bin_dir.mkdir()
    for tool in TOOLS:
        real = shutil.which(tool)
        if real is None:
            sys.exit(f"{tool} not found: start the cell with scripts/sge/start.sh")
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\n'
                                    f'exec "{real}" "$@"\n')
        (bin_dir / tool).chmod(0o755)
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
    return log


def count_calls(log: Path) -> dict[str, int]:
    lines = log.read_text().splitlines() if log.exists() else []
    return {tool: sum(ln.startswith(tool + " ") for ln in lines) for tool in TOOLS}


def bench_hpsearch(sim_dir: Path, out_dir: Path, runs: int,
                   parallelism: int) -> dict[str, float]:
    from hpsearch.backends.cluster.backend import ClusterBackend
    from hpsearch.cli.app import main

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
            f"--out_dir={out_dir}", "--run_cluster", "--scheduler=sge",
            f"--num_jobs={parallelism}", "--num_hours=1", "--sge_gpus=0",
            "--deterministic_search"]
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


def bench_bare(sim_dir: Path, out: Path, runs: int, parallelism: int) -> float:
    """Seconds of ``qsub -sync y`` over the bare array (its tasks' summaries checked)."""
    script = sim_dir / "bare.sh"
    script.write_text(BARE.format(sim_dir=sim_dir, python=sys.executable, out=out))
    start = time.perf_counter()
    subprocess.run(["qsub", "-sync", "y", "-t", f"1-{runs}", "-tc", str(parallelism),
                    str(script)], check=True, capture_output=True)
    wall = time.perf_counter() - start
    done = sum((out / str(t) / "summary.txt").exists() for t in range(1, runs + 1))
    if done != runs:
        sys.exit(f"bare array: {done}/{runs} tasks wrote their summary")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument("--parallelism", type=int, default=8)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_sge_"))
    sim_dir = tmp / "sim"
    sim_dir.mkdir()
    (sim_dir / "square_sim.py").write_text(SIM)
    (sim_dir / "grid_square.py").write_text(GRID.format(runs=args.runs))
    log = counting_path(tmp)
    try:
        ours = bench_hpsearch(sim_dir, tmp / "hpsearch_out", args.runs, args.parallelism)
        calls = count_calls(log)
        bare = bench_bare(sim_dir, tmp / "bare_out", args.runs, args.parallelism)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    queries, polls = calls["qstat"], ours["polls"]
    print(f"{args.runs} trivial runs, array parallelism {args.parallelism}")
    print(f"hpsearch: wall {ours['wall']:.1f} s to the results CSV; qsub calls {calls['qsub']} "
          f"(target <= 2: the qsub -w v check and one array); qstat calls {queries} in {polls} "
          f"polls, at most {ours['max_queries_per_poll']} per poll (target 1), "
          f"{queries / max(polls, 1):.2f} per poll, {queries / ours['wall']:.2f} per second "
          f"(target <= 1); qacct calls {calls['qacct']}, qalter calls {calls['qalter']}")
    print(f"bare array (qsub -sync y): wall {bare:.1f} s")
    print(f"ratio hpsearch / bare array wall: {ours['wall'] / bare:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
