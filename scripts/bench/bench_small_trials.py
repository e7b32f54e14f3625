"""Benchmark of small trials (issue 24): preloaded runs against Optuna in one process.

    python scripts/bench/bench_small_trials.py            # local; --trials 30 --repeats 1
    python scripts/bench/bench_small_trials.py --only slurm   # needs scripts/slurm/start.sh
    python scripts/bench/bench_small_trials.py --only ssh     # needs scripts/ssh/start.sh

(local) 30 TPE trials of ``sims/mlp_digits.py:train`` (a PyTorch MLP on sklearn's digits,
    about 0.1-0.2 s of training; ``import torch, sklearn`` takes seconds), 2 slots, three
    ways, in turn, each the wall time of a whole process from its start to its exit:
    ``hpsearch`` (function objective: preloaded by default), an Optuna script that runs the
    same function in its own process (``study.optimize(n_jobs=2)``, ``TPESampler``), and
    ``hpsearch --no_preload`` (a fresh interpreter per trial). Target: preloaded <= 1.2x of
    Optuna.
(slurm) The same search on the local Slurm, ``--runs_per_job=4`` (each worker's zygote)
    against one run per job without preloading.
(ssh) The same search on two SSH hosts, 2 runs at once (``--hosts=gpu1,gpu2 --num_jobs=2``:
    the test hosts of scripts/ssh/start.sh, reached through ``$HPSEARCH_SSH_CONFIG``, default
    its ``/var/lib/hpsearch-ssh/ssh_config``; each host's zygote) against ``--no_preload``.

Also printed: what ``import torch, sklearn.datasets`` costs a fresh interpreter (median of
three) and the seconds each trial saved, ``(no_preload - preloaded) / trials``. Needs torch,
scikit-learn and optuna in the Python that runs it (the one hpsearch is installed in).
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

from installed import HPSEARCH

SIMS = Path(__file__).resolve().parent / "sims"

SEARCH = """\
script: mlp_digits.py:train
metrics: [val_loss]
direction: minimize
algorithm: tpe
num_trials: {trials}
seed: 1
parameters:
  lr: {{method: loguniform, low: 1.0e-4, high: 1.0e-1}}
  hidden: [32, 64, 128]
"""

OPTUNA = """\
import sys
sys.path.insert(0, {sims!r})
import optuna
from mlp_digits import train
optuna.logging.set_verbosity(optuna.logging.ERROR)

def objective(trial):
    return train({{"lr": trial.suggest_float("lr", 1e-4, 1e-1, log=True),
                   "hidden": trial.suggest_categorical("hidden", [32, 64, 128])}})["val_loss"]

study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=1))
study.optimize(objective, n_trials={trials}, n_jobs=2)
"""


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def hpsearch(tmp: Path, name: str, *extra: str) -> float:
    search = tmp / "search.yaml"
    search.write_text(SEARCH.format(trials=ARGS.trials))
    return timed([*HPSEARCH, f"--search_file={search}", f"--run_cwd={SIMS}",
                  f"--out_dir={tmp / name}", *extra])


def import_cost() -> float:
    return statistics.median(
        timed([sys.executable, "-c", "import torch, sklearn.datasets"]) for _ in range(3))


def local(tmp: Path) -> None:
    print(f"{ARGS.trials} TPE trials of mlp_digits.py:train, 2 slots, {ARGS.repeats} "
          "repeat(s), wall time of each whole process (s)")
    rows: dict[str, list[float]] = {"preloaded": [], "optuna": [], "no_preload": []}
    for k in range(ARGS.repeats):
        slots = ("--visible_gpus=-1", "--num_jobs=2")
        rows["preloaded"].append(hpsearch(tmp, f"pre{k}", *slots))
        rows["optuna"].append(timed([sys.executable, "-c", OPTUNA.format(
            sims=str(SIMS), trials=ARGS.trials)]))
        rows["no_preload"].append(hpsearch(tmp, f"fresh{k}", *slots, "--no_preload"))
    for name, values in rows.items():
        print(f"  {name:<11} {' '.join(f'{v:6.2f}' for v in values)}   "
              f"median {statistics.median(values):6.2f}")
    pre, opt = statistics.median(rows["preloaded"]), statistics.median(rows["optuna"])
    fresh = statistics.median(rows["no_preload"])
    print(f"preloaded / optuna = {pre / opt:.2f}x (target <= 1.2x); no_preload / optuna = "
          f"{fresh / opt:.2f}x")
    print(f"import torch, sklearn.datasets: {import_cost():.2f} s in a fresh interpreter; "
          f"saved per trial: {(fresh - pre) / ARGS.trials:.2f} s")


def slurm(tmp: Path) -> None:
    cluster = ("--run_cluster", "--scheduler=slurm", "--slurm_mem=1G", "--num_hours=1")
    packed = hpsearch(tmp, "packed", *cluster, "--runs_per_job=4", "--num_jobs=2")
    single = hpsearch(tmp, "single", *cluster, "--num_jobs=2", "--no_preload")
    print(f"{ARGS.trials} trials on the local Slurm: --runs_per_job=4 (preloaded) "
          f"{packed:.2f} s, one run per job without preloading {single:.2f} s "
          f"({single / packed:.2f}x)")


def ssh(tmp: Path) -> None:
    os.environ.setdefault("HPSEARCH_SSH_CONFIG", "/var/lib/hpsearch-ssh/ssh_config")
    hosts = ("--hosts=gpu1,gpu2", "--visible_gpus=-1", "--num_jobs=2")
    rows: dict[str, list[float]] = {"preloaded": [], "no_preload": []}
    for k in range(ARGS.repeats):
        rows["preloaded"].append(hpsearch(tmp, f"ssh-pre{k}", *hosts))
        rows["no_preload"].append(hpsearch(tmp, f"ssh-fresh{k}", *hosts, "--no_preload"))
    pre, fresh = statistics.median(rows["preloaded"]), statistics.median(rows["no_preload"])
    print(f"{ARGS.trials} trials on SSH hosts gpu1,gpu2, 2 at once, wall time (s): "
          f"preloaded {' '.join(f'{v:.2f}' for v in rows['preloaded'])}, no_preload "
          f"{' '.join(f'{v:.2f}' for v in rows['no_preload'])} ({fresh / pre:.2f}x); saved "
          f"per trial: {(fresh - pre) / ARGS.trials:.2f} s")


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-small-") as folder:
        tmp = Path(folder)
        if ARGS.only in (None, "local"):
            local(tmp)
        if ARGS.only == "slurm":
            slurm(tmp)
        if ARGS.only == "ssh":
            ssh(tmp)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["local", "slurm", "ssh"])
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=1)
    ARGS = parser.parse_args()
    main()
