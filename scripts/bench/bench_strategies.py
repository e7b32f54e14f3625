"""Benchmarks of the search strategies (issue 9). Run by hand from the checkout:
``python scripts/bench/bench_strategies.py [--only a|b|c] [--seeds 5] [--trials 60]
[--pairs 10]``.

(a) quality: Branin and Hartmann-3, 60 trials, 2 slots, 5 seeds: the median best value of
    ``hpsearch --algorithm=tpe`` (real searches through the CLI, the sim
    ``sims/testfunc.py`` as a subprocess per trial) against a plain Optuna script
    (``TPESampler(seed=s)``, ``study.optimize(n_jobs=2)``, the function called in-process) and
    against ``hpsearch --algorithm=random``. Target: tpe within noise of plain Optuna,
    better than random.
(b) overhead: 1 000 trials of a no-op sim (``sims/sleep_sim.sh`` with ``--seconds=0`` under
    ``/bin/sh``), 2 slots, tpe: hpsearch's wall time against an Optuna script whose objective
    runs the same sim as a subprocess, ``study.optimize(n_jobs=2)``, with the sampler
    hpsearch's tpe runs with 2 slots (``TPESampler(constant_liar=True)``: the same sampling
    work on both sides, so the ratio is hpsearch's own cost; ``--default_tpe``: Optuna's
    default ``TPESampler``, whose sampling is about 10% cheaper); after a warm-up of each,
    ``--pairs`` runs of the two in turn, the median of the pairs' ratios. Target <= 1.0x.
(c) scale: resuming a finished 100 000-run grid search (journal replay, nothing left to
    run): wall time and peak RSS of the whole ``hpsearch`` process. The search directory is
    written directly (a journal in the driver's own event format, with the events a driver
    writes for each run: trial, launch, submit, end; and the 100 000 run directories, empty:
    a resume only lists them). The first resume replays those 400 000 events and compacts
    the journal, as a driver does when its search ends; the figure is the resume of the
    finished search after that (min of 3). Target <= 1.5 s and <= 150 MB.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIMS = HERE / "sims"
sys.path.insert(0, str(SIMS))

from installed import HPSEARCH  # noqa: E402
from testfunc import FUNCTIONS  # noqa: E402


def search_file(folder: Path, function: str, trials: int, seed: int) -> Path:
    _, bounds, _ = FUNCTIONS[function]
    lines = ["script: testfunc.py", "summary_file: summary.txt", "metrics: [value]",
             "objective: value", "direction: minimize", f"num_trials: {trials}",
             f"seed: {seed}", "parameters:", f"  function: {function}"]
    lines += [f"  {name}: {{method: uniform, low: {low}, high: {high}}}"
              for name, (low, high) in bounds.items()]
    path = folder / f"{function}_{seed}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def hpsearch(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([*HPSEARCH, *args], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def best_of(out_dir: Path) -> float:
    """The best value of the finished runs, as every tool reads a search (a finished
    search's journal is compacted to one event per run)."""
    from hpsearch.engine.journal import replay

    runs = replay(out_dir / "journal.jsonl").runs.values()
    return min((r.metrics["value"] for r in runs if r.status == "finished"),
               default=float("inf"))


def plain_optuna(function: str, trials: int, seed: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    evaluate, bounds, _ = FUNCTIONS[function]

    def objective(trial) -> float:
        return evaluate([trial.suggest_float(n, lo, hi) for n, (lo, hi) in bounds.items()])

    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=trials, n_jobs=2)
    return study.best_value


def bench_quality(tmp: Path, seeds: int, trials: int) -> None:
    print(f"(a) median best of {seeds} seeds, {trials} trials, 2 slots [min, max]; lower is "
          "better")
    for function, (_, _, optimum) in FUNCTIONS.items():
        cells = {}
        for algorithm in ("tpe", "random"):
            values = []
            for seed in range(seeds):
                out = tmp / f"{function}-{algorithm}-{seed}"
                hpsearch(f"--search_file={search_file(tmp, function, trials, seed)}",
                         f"--run_cwd={SIMS}", f"--out_dir={out}", "--visible_gpus=-1",
                         "--num_jobs=2", f"--algorithm={algorithm}")
                values.append(best_of(out))
            cells[f"hpsearch {algorithm}"] = values
        cells["plain Optuna TPE"] = [plain_optuna(function, trials, s) for s in range(seeds)]
        row = "  ".join(f"{name} {statistics.median(v):.4f} [{min(v):.3f}, {max(v):.3f}]"
                        for name, v in cells.items())
        print(f"    {function} (optimum {optimum}): {row}")


def bench_overhead(tmp: Path, trials: int, pairs: int, default_tpe: bool) -> None:
    path = tmp / "noop.yaml"
    path.write_text("script: sleep_sim.sh\nsummary_file: summary.txt\nmetrics: [loss]\n"
                    f"algorithm: tpe\nnum_trials: {trials}\nseed: 1\nparameters:\n"
                    "  seconds: 0\n  x1: {method: uniform, low: 0, high: 1}\n"
                    "  x2: {method: uniform, low: 0, high: 1}\n")
    sampler = "TPESampler(seed=1)" if default_tpe else "TPESampler(seed=1, constant_liar=True)"
    code = f"""
import os, subprocess, tempfile, optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
def objective(trial):
    x1, x2 = trial.suggest_float("x1", 0, 1), trial.suggest_float("x2", 0, 1)
    out = tempfile.mkdtemp(dir={str(tmp)!r})
    subprocess.run(["/bin/sh", "sleep_sim.sh", "--out_dir=" + out, "--seconds=0",
                    f"--x1={{x1}}", f"--x2={{x2}}"], cwd={str(SIMS)!r}, check=True)
    with open(os.path.join(out, "summary.txt")) as f:
        return float(f.read().split()[1])
study = optuna.create_study(sampler=optuna.samplers.{sampler})
study.optimize(objective, n_trials={trials}, n_jobs=2)
"""

    def ours(pair: int) -> float:
        return hpsearch(f"--search_file={path}", f"--run_cwd={SIMS}",
                        f"--out_dir={tmp / f'noop{pair}'}", "--python=/bin/sh",
                        "--visible_gpus=-1", "--num_jobs=2")

    def theirs() -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    # a warm-up of each, then pairs in turn: the ratio taken pair by pair keeps its meaning
    # while the machine's speed drifts
    ours(-1), theirs()
    walls = [(ours(pair), theirs()) for pair in range(pairs)]
    ratios = [a / b for a, b in walls]
    print(f"(b) {trials} trials of a no-op sim, 2 slots, tpe, {pairs} pairs: hpsearch median "
          f"{statistics.median(a for a, _ in walls):.1f} s, an Optuna script "
          f"({sampler}, study.optimize(n_jobs=2), the sim as a subprocess) median "
          f"{statistics.median(b for _, b in walls):.1f} s: ratio median "
          f"{statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}] "
          "(target <= 1.0)")


def write_finished_grid(out_dir: Path, side_a: int, side_b: int) -> Path:
    """A finished grid search of side_a x side_b runs, as a driver would leave it."""
    from hpsearch.engine.journal import Journal
    from hpsearch.runs.model import run_id_of
    from hpsearch.strategies.grid import grid_identity
    from hpsearch.strategies.gridspace import SearchSpace

    module = out_dir.parent / "grid100k.py"
    module.write_text(f"grid = {{'a': list(range({side_a})), 'b': list(range({side_b}))}}\n"
                      "_SCRIPT_NAME = 'sleep_sim.sh'\n_SUMMARY_FILENAME = 'summary.txt'\n"
                      "_SUMMARY_KEYWORDS = ['loss', 'finished']\n_PERFORMANCE_SORT_ASC = True\n")
    grid = {"a": list(range(side_a)), "b": list(range(side_b))}
    space = SearchSpace(grid, [], seed=42)
    identity = grid_identity(space)
    (out_dir / "runs").mkdir(parents=True)
    journal = Journal(out_dir / "journal.jsonl")
    journal.append("start", host="bench", pid=1, backend="local")
    for trial, (position, config) in enumerate(space.walk()):
        run = run_id_of(config)
        os.mkdir(out_dir / "runs" / run)
        key = f"k{trial:08x}"
        journal.append("trial", trial=trial, run=run, config=config,
                       internal={"g": identity, "p": position})
        journal.append("launch", key=key, runs=[[run, 1]])
        journal.append("submit", key=key, jobs={run: f"bench:{trial}"})
        journal.append("end", run=run, status="finished", attempt=1, exit=0, reason=None,
                       metrics={"loss": trial / 7, "finished": 1}, wall=0.01, extra={})
        if trial % 10000 == 0:
            journal.flush()
    journal.append("stop", reason="done")
    journal.close()
    return module


def bench_resume(tmp: Path) -> None:
    out_dir = tmp / "grid100k"
    module = write_finished_grid(out_dir, 1000, 100)
    argv = [*HPSEARCH, f"--grid_module={module}", f"--run_cwd={SIMS}",
            f"--out_dir={out_dir}", "--python=/bin/sh", "--visible_gpus=-1", "--num_jobs=2"]
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    print(f"(c) the first resume (400 000 events replayed, the journal compacted): "
          f"{time.perf_counter() - start:.2f} s, peak RSS {usage.ru_maxrss / 1024:.0f} MB")
    walls, peaks = [], []
    for _ in range(3):
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        walls.append(time.perf_counter() - start)
        peaks.append(usage.ru_maxrss / 1024)
        assert os.waitstatus_to_exitcode(status) == 0
    print(f"    resuming the finished 100 000-run search: wall {min(walls):.2f} s (min of 3; "
          f"{', '.join(f'{w:.2f}' for w in walls)}), peak RSS {max(peaks):.0f} MB "
          "(targets <= 1.5 s, <= 150 MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["a", "b", "c"], action="append")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--overhead_trials", type=int, default=1000)
    parser.add_argument("--pairs", type=int, default=10, help="(b): runs of each, in turn")
    parser.add_argument("--default_tpe", action="store_true",
                        help="(b): the Optuna script with Optuna's default TPESampler")
    args = parser.parse_args()
    only = set(args.only or "abc")
    with tempfile.TemporaryDirectory(prefix="hpsearch-bench-") as name:
        tmp = Path(name)
        if "a" in only:
            bench_quality(tmp, args.seeds, args.trials)
        if "b" in only:
            bench_overhead(tmp, args.overhead_trials, args.pairs, args.default_tpe)
        if "c" in only:
            bench_resume(tmp)


if __name__ == "__main__":
    main()
