"""Benchmarks of the core (issue 2). Run by hand: ``python scripts/bench/bench_core.py``.

(a) 200 runs of a 0.1 s sim with --num_jobs=2: wall time / (200 x 0.1 / 2)      target <= 1.10
(b) driver CPU time per run over 10 000 no-op runs                                 target <= 3 ms
(c) a 10**6-point grid with a condition: time to the first launch                  target <= 1 s
    and peak RSS                                                                   target <= 150 MB
(d) ``hpsearch collect`` over 10 000 run directories                               target <= 3 s

``--quick`` shrinks (b) and (d) to 2 000 runs. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import resource
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import HPSEARCH

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SIMS = HERE / "sims"


def hpsearch_argv(grid: str, out_dir: Path, *extra: str) -> list[str]:
    return [*HPSEARCH, f"--grid_module={SIMS / grid}",
            f"--run_cwd={SIMS}", f"--out_dir={out_dir}", "--python=/bin/sh",
            "--visible_gpus=-1", "--deterministic_search", *extra]


def run_driver(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env={**os.environ, **env}, cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def bare_launcher_wall(tmp: Path, runs: int, seconds: float, jobs: int) -> float:
    """The floor: the same runs through the same wrapper by a loop that keeps no books."""
    from hpsearch.runs.wrapper import local_argv

    selector = selectors.DefaultSelector()
    started = 0

    def launch() -> None:
        nonlocal started
        run_dir = tmp / "bare" / str(started)
        run_dir.mkdir(parents=True)
        argv = local_argv(str(run_dir), "kbare", "host", str(SIMS), [
            "/bin/sh", "sleep_sim.sh", f"--out_dir={run_dir / 'out'}", f"--seconds={seconds}"])
        proc = subprocess.Popen(argv, cwd=SIMS, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        selector.register(os.pidfd_open(proc.pid), selectors.EVENT_READ, proc)
        started += 1

    start = time.perf_counter()
    for _ in range(jobs):
        launch()
    for _ in range(runs):
        key = selector.select()[0][0]
        key.data.wait()
        selector.unregister(key.fd)
        os.close(key.fd)
        if started < runs:
            launch()
    return time.perf_counter() - start


def bench_wall(tmp: Path) -> None:
    runs, seconds, jobs = 200, 0.1, 2
    floor = bare_launcher_wall(tmp, runs, seconds, jobs)
    wall = run_driver(hpsearch_argv("grid_sleep.py", tmp / "a", f"--num_jobs={jobs}"),
                      {"BENCH_RUNS": str(runs), "BENCH_SECONDS": str(seconds)})
    ideal = runs * seconds / jobs
    print(f"(a) {runs} runs of a {seconds} s sim, --num_jobs={jobs}: wall {wall:.2f} s, "
          f"ideal {ideal:.1f} s, ratio {wall / ideal:.3f} (target <= 1.10); a bare launcher "
          f"(no journal, no results) takes {floor:.2f} s = {floor / ideal:.3f} x ideal, so "
          f"hpsearch's own share is {(wall - floor) / ideal:.3f}")


def bench_driver_cpu(tmp: Path, runs: int) -> Path:
    """The driver runs in this process, so RUSAGE_SELF is the driver's CPU alone."""
    from hpsearch.cli.app import main

    os.environ.update(BENCH_RUNS=str(runs), BENCH_SECONDS="0")
    out_dir = tmp / "b"
    argv = hpsearch_argv("grid_sleep.py", out_dir, "--num_jobs=2")[len(HPSEARCH):]
    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    with open(os.devnull, "w") as devnull:
        saved, sys.stderr = sys.stderr, devnull
        try:
            code = main(argv)
        finally:
            sys.stderr = saved
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"(b) {runs} no-op runs: driver CPU {cpu:.2f} s = {1000 * cpu / runs:.2f} ms/run "
          f"(target <= 3 ms), wall {wall:.1f} s, exit {code}")
    return out_dir


def bench_first_launch(tmp: Path) -> None:
    out_dir = tmp / "c"
    argv = hpsearch_argv("grid_million.py", out_dir, "--num_jobs=2")
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    runs_dir = out_dir / "runs"
    while not (runs_dir.is_dir() and any(runs_dir.iterdir())):
        time.sleep(0.002)
    first = time.perf_counter() - start
    time.sleep(3)
    with open(f"/proc/{proc.pid}/status") as f:
        hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
    proc.terminate()
    proc.wait()
    print(f"(c) 10**6-point grid with a condition: first launch after {first:.3f} s "
          f"(target <= 1 s); driver peak RSS after 3 s {hwm / 1024:.0f} MB")
    code = ("import resource, sys;"
            "from hpsearch.spec.gridmodule import load_spec;"
            "from hpsearch.strategies.gridspace import SearchSpace;"
            "from pathlib import Path;"
            "s = load_spec(sys.argv[1], Path(sys.argv[2]));"
            "n = sum(1 for _ in SearchSpace(s.grid, s.conditions));"
            "print(n, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-P", "-c", code, str(SIMS / "grid_million.py"),
                          str(SIMS)], capture_output=True, text=True, check=True).stdout
    count, maxrss_kb = (int(x) for x in out.split())
    print(f"    walking all {count} configurations (shuffled, deduplicated): "
          f"{time.perf_counter() - start:.1f} s, peak RSS {maxrss_kb / 1024:.0f} MB "
          "(target <= 150 MB)")


def bench_collect(out_dir: Path) -> None:
    count = sum(1 for _ in (out_dir / "runs").iterdir())
    argv = [*HPSEARCH, "collect", str(out_dir)]
    with_journal = run_driver(argv, {})
    os.replace(out_dir / "journal.jsonl", out_dir / "journal.bak")
    without = run_driver(argv, {})
    print(f"(d) collect over {count} run directories: {with_journal:.2f} s with the journal, "
          f"{without:.2f} s from the run directories alone (target <= 3 s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 000 runs for (b) and (d)")
    parser.add_argument("--only", choices=["a", "b", "c", "d"], action="append")
    args = parser.parse_args()
    only = set(args.only or "abcd")
    tmp = Path(tempfile.mkdtemp(prefix="hpsearch-bench-"))
    try:
        if "a" in only:
            bench_wall(tmp)
        if only & {"b", "d"}:
            out_dir = bench_driver_cpu(tmp, 2000 if args.quick else 10000)
            if "d" in only:
                bench_collect(out_dir)
        if "c" in only:
            bench_first_launch(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
