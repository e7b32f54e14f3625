"""Benchmark of Hyperband and BOHB by budget (issue 26). Run by hand from the checkout, with
hpsearch installed (``pip install .``)::

    python scripts/bench/bench_multifidelity.py [--seeds 5] [--random_configs 100] [--workers 4]

What it measures: the budget (epochs trained, all runs together) that ``hyperband``,
``bohb``, random search pruned by ASHA, and plain random search spend until some run has a
validation loss at least as good as plain random search's final best (the target), on the
multi-fidelity sim ``sims/multifidelity/train.py`` (its ``val_loss`` function: quality rises
with the budget, deterministic per configuration). Per seed, plain random search draws
``--random_configs`` configurations at the full 27 epochs; its best is that seed's target.
Printed: each algorithm's budget per seed (inf: it did not reach the target within
``MAX_CONFIGS`` new configurations), its median over the seeds (0, 1, ... ``--seeds`` - 1),
and the median's share of plain random search's. Target: bohb <= 1/4 of random's budget.

How: hpsearch's own strategies (``HyperbandStrategy``, ``BohbStrategy``, ``RandomStrategy``)
and its own ASHA pruner (``make_pruner``), driven in this process as the driver drives them
(ask while a worker is free, tell when a run ends; the pruner consulted after each epoch),
with ``--workers`` runs at a time on a simulated clock where an epoch takes one unit. The
budget is what it measures, not seconds, so no process is started. Budgets: ``budget:
{parameter: epochs, min: 1, max: 27, eta: 3}``; a promoted configuration continues its
checkpoint (it trains only the epochs it lacks, as the sim does with
``HPSEARCH_RESUME_FROM``); ASHA: ``min_resource: 1, reduction_factor: 3, max_resource: 27``.
The budget spent by a moment counts the epochs that runs still running trained until then.
"""

from __future__ import annotations

import argparse
import dataclasses
import heapq
import importlib.util
import statistics
import tempfile
from pathlib import Path
from typing import Any

import installed  # noqa: F401  (checks that hpsearch is the installed package)

from hpsearch.engine.pruners import make_pruner
from hpsearch.spec.pruning import parse_pruner
from hpsearch.spec.searchfile import spec_from_mapping
from hpsearch.strategies.base import Outcome, Strategy
from hpsearch.strategies.hyperband import HyperbandStrategy
from hpsearch.strategies.optuna.bohb import BohbStrategy
from hpsearch.strategies.sampled import RandomStrategy

ROOT = Path(__file__).resolve().parents[2]
MAX_EPOCHS = 27
SPACE = {"lr": {"method": "loguniform", "low": 1.0e-4, "high": 1.0},
         "width": {"method": "qloguniform", "low": 16, "high": 1024, "q": 16},
         "dropout": {"method": "uniform", "low": 0.0, "high": 0.6}}
#: new configurations a budget search may draw at most (it stops at the target)
MAX_CONFIGS = 2000


def load_sim() -> Any:
    """The sim's module (its ``val_loss`` function)."""
    spec = importlib.util.spec_from_file_location(
        "multifidelity_train", ROOT / "sims" / "multifidelity" / "train.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SIM = load_sim()


def loss(config: dict[str, Any], epochs: int) -> float:
    return SIM.val_loss(config["lr"], config["width"], config["dropout"], epochs)


class Clock:
    """Runs on ``workers`` workers, an epoch a time unit; the budget spent so far."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.now = 0.0
        self.events: list[tuple[float, int, str, Any]] = []
        self.running: dict[int, tuple[float, int]] = {}  # trial -> (start, epochs to train)
        self.done_budget = 0.0
        self.order = 0

    def free(self) -> int:
        return self.workers - len(self.running)

    def start(self, trial: int, epochs: int, payload: Any) -> None:
        self.running[trial] = (self.now, epochs)
        for k in range(1, epochs + 1):
            self.order += 1
            heapq.heappush(self.events, (self.now + k, self.order, "epoch", (trial, k,
                                                                            payload)))

    def stop(self, trial: int) -> None:
        start, _ = self.running.pop(trial)
        self.done_budget += self.now - start
        self.events = [e for e in self.events if e[3][0] != trial]
        heapq.heapify(self.events)

    def spent(self) -> float:
        return self.done_budget + sum(self.now - s for s, _ in self.running.values())

    def next(self) -> tuple[int, int, Any] | None:
        if not self.events:
            return None
        when, _, _, event = heapq.heappop(self.events)
        self.now = when
        return event


def spec_of(algorithm: str, seed: int, pruner: bool = False) -> Any:
    folder = Path(tempfile.mkdtemp(prefix="bench-mf-"))
    (folder / "train.py").write_text("")
    data = {"script": "train.py", "metrics": ["val_loss"], "algorithm": algorithm,
            "seed": seed, "parameters": SPACE}
    if algorithm in ("hyperband", "bohb"):
        data["budget"] = {"parameter": "epochs", "min": 1, "max": MAX_EPOCHS, "eta": 3}
    spec = spec_from_mapping(data, "bench", folder)
    if pruner:
        spec = dataclasses.replace(spec, pruner=parse_pruner(
            "asha", {"min_resource": 1, "reduction_factor": 3,
                     "max_resource": MAX_EPOCHS}, "bench"))
    return spec


def budget_search(strategy: Strategy, target: float, workers: int) -> float:
    """Budget until a run ends at or below ``target`` (a promotion trains what it lacks);
    inf: no run did, within :data:`MAX_CONFIGS` new configurations."""
    clock = Clock(workers)
    epochs_of: dict[int, int] = {}
    while True:
        for proposal in strategy.ask(clock.free()):
            epochs = proposal.config["epochs"]
            parent = proposal.lineage.get("continues")
            start = epochs_of[parent] if parent is not None else 0
            epochs_of[proposal.trial] = epochs
            clock.start(proposal.trial, epochs - start, proposal.config)
        event = clock.next()
        if event is None:
            return float("inf")
        trial, k, config = event
        if k < clock.running[trial][1]:
            continue
        value = loss(config, config["epochs"])
        clock.stop(trial)
        if value <= target:
            return clock.spent()
        strategy.tell(Outcome(trial, "finished", [value]))


def random_search(seed: int, configs: int, workers: int, target: float | None,
                  asha: bool) -> tuple[float, float]:
    """Plain (or ASHA-pruned) random search of ``configs`` configurations at 27 epochs: its
    best final loss, and the budget until a run ended at or below ``target`` (its own best
    when None)."""
    spec = spec_of("random", seed, pruner=asha)
    strategy = RandomStrategy(spec, seed, configs)
    pruner = make_pruner(spec.pruner, True)
    clock = Clock(workers)
    best, reached, points = float("inf"), None, {}
    while True:
        for proposal in strategy.ask(clock.free()):
            points[proposal.trial] = []
            clock.start(proposal.trial, MAX_EPOCHS, proposal.config)
        event = clock.next()
        if event is None:
            break
        trial, k, config = event
        value = loss(config, k)
        points[trial].append((float(k), value))
        stop = k == MAX_EPOCHS
        if not stop and asha:
            stop = pruner.consider(str(trial), trial, points[trial]).prune is not None
        if not stop:
            continue
        if k == MAX_EPOCHS and asha:
            pruner.finished(str(trial), trial, points[trial])
        clock.stop(trial)
        if k == MAX_EPOCHS and value < best:
            best = value
            reached = clock.spent()
        if target is not None and value <= target:
            return best, clock.spent()
    if target is None:
        assert reached is not None
        return best, reached
    return best, float("inf")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--random_configs", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    spent: dict[str, list[float]] = {"random": [], "asha random": [], "hyperband": [],
                                     "bohb": []}
    for seed in range(args.seeds):
        target, spent_random = random_search(seed, args.random_configs, args.workers, None,
                                             asha=False)
        spent["random"].append(spent_random)
        spent["asha random"].append(random_search(seed, MAX_CONFIGS, args.workers, target,
                                                  asha=True)[1])
        spent["hyperband"].append(budget_search(
            HyperbandStrategy(spec_of("hyperband", seed), seed, MAX_CONFIGS), target,
            args.workers))
        spent["bohb"].append(budget_search(
            BohbStrategy(spec_of("bohb", seed), seed, MAX_CONFIGS), target, args.workers))
        print(f"seed {seed}: target val_loss {target:.4f}; epochs: " + ", ".join(
            f"{name} {values[-1]:.0f}" for name, values in spent.items()), flush=True)
    base = statistics.median(spent["random"])
    print(f"\nmedian epochs over {args.seeds} seeds to reach plain random search's final best "
          f"({args.random_configs} configurations x {MAX_EPOCHS} epochs, {args.workers} "
          "workers):")
    for name, values in spent.items():
        median = statistics.median(values)
        print(f"  {name:12s} {median:8.0f}  ({median / base:.2f} of random's)")
    share = statistics.median(spent["bohb"]) / base
    print(f"target bohb <= 1/4 of random's: {'met' if share <= 0.25 else 'NOT met'} "
          f"({share:.2f})")


if __name__ == "__main__":
    main()
