"""Benchmark of early stopping (issue 10). Run by hand from the checkout, with hpsearch
installed (``pip install .``)::

    python scripts/bench/bench_pruning.py [--trials 100] [--epoch_seconds 0.2] [--seed 3]

Two real searches through the CLI, each ``--trials`` random configurations of the
learning-curve sim ``sims/curves/train.py`` on 2 CPU slots, 27 epochs a run: one with no
pruner, one with ``pruner: asha`` (``min_resource: 1, reduction_factor: 3,
max_resource: 27``, rungs at 1, 3, 9 and 27 epochs). Both draw the same configurations
(random search, same seed: trial ``n`` gets the same values in both).

The curves (see the sim's docstring): a configuration's final validation loss is a smooth
function of its learning rate, width and dropout, and its loss falls from 1.5 towards it
at a speed set by the learning rate, with a little noise seeded by the configuration::

    final = 0.1 + 0.5 * log10(lr / 0.03)**2 + 8 / width + 0.6 * (dropout - 0.2)**2
    loss(epoch) = final + (1.5 - final) * exp(-epoch * 2 * lr**0.5)   (+ noise)

so a run that is bad after a few epochs mostly stays bad, but a slow learner (small lr) can
look bad early and end well: the pruner's gamble, as on real models.

Printed for each search: the epochs run in all (each run's last reported step; a pruned
run's epochs until it stopped count), the wall time, the best final ``val_loss`` of a run
that went to its end, and the time from the search's first submission until a run ended
with a loss at least as good as the worse of the two bests (the same target for both).
Target: >= 3x fewer epochs with asha.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import HPSEARCH

from hpsearch.engine.journal import RunState, replay
from hpsearch.runs.curves import read_curve

ROOT = Path(__file__).resolve().parents[2]
SIM = ROOT / "sims" / "curves"

SEARCH = """\
script: train.py
metrics: [val_loss, epoch]
objective: val_loss
direction: minimize
algorithm: random
num_trials: {trials}
seed: {seed}
{pruner}
parameters:
  lr:      {{method: loguniform, low: 1.0e-4, high: 1.0}}
  width:   {{method: qloguniform, low: 8, high: 512, q: 8}}
  dropout: {{method: uniform, low: 0.0, high: 0.6}}
  epochs: 27
  epoch_seconds: {epoch_seconds}
"""
ASHA = "pruner: asha\npruner_options: {min_resource: 1, reduction_factor: 3, max_resource: 27}"


def search(folder: Path, name: str, pruner: str, args: argparse.Namespace
           ) -> tuple[float, list[RunState]]:
    """Run one search; its wall time and its runs as the journal has them."""
    path = folder / f"{name}.yaml"
    path.write_text(SEARCH.format(trials=args.trials, seed=args.seed, pruner=pruner,
                                  epoch_seconds=args.epoch_seconds))
    out = folder / name
    begin = time.monotonic()
    done = subprocess.run([*HPSEARCH, f"--search_file={path}",
                           f"--run_cwd={SIM}", f"--out_dir={out}", "--visible_gpus=-1",
                           "--num_jobs=2"], capture_output=True, text=True, check=False)
    wall = time.monotonic() - begin
    if done.returncode != 0:
        sys.exit(f"{name}: hpsearch exited {done.returncode}:\n{done.stderr}")
    return wall, list(replay(out / "journal.jsonl").runs.values())


def epochs_run(out: Path, run: RunState) -> int:
    points = read_curve(out / "runs" / run.run_id)
    return int(max((p["step"] for p in points), default=0))


def best(runs: list[RunState]) -> float:
    return min(r.metrics["val_loss"] for r in runs if r.status == "finished")


def time_to(runs: list[RunState], target: float) -> float:
    start = min(r.submitted_at for r in runs if r.submitted_at is not None)
    return min(r.ended_at for r in runs if r.status == "finished"
               and r.ended_at is not None and r.metrics["val_loss"] <= target) - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--epoch_seconds", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_pruning_") as tmp:
        folder = Path(tmp)
        results = {name: search(folder, name, pruner, args)
                   for name, pruner in (("none", ""), ("asha", ASHA))}
        target = max(best(runs) for _, runs in results.values())
        epochs = {}
        for name, (wall, runs) in results.items():
            epochs[name] = sum(epochs_run(folder / name, r) for r in runs)
            pruned = sum(r.status == "pruned" for r in runs)
            print(f"{name:5} {len(runs)} runs ({pruned} pruned): {epochs[name]} epochs, "
                  f"wall {wall:.1f} s, best val_loss {best(runs):.4f}, "
                  f"{time_to(runs, target):.1f} s to val_loss <= {target:.4f}")
        print(f"asha ran {epochs['none'] / epochs['asha']:.2f}x fewer epochs (target >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
