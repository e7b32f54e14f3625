"""How well the search strategies optimise (issue 9). Run by hand:
``python scripts/bench/bench_strategies_quality.py [--trials 60] [--seeds 5] [--gp]``.

In-process, no CLI: each search asks 2 proposals, evaluates both, tells both (two runs in
flight, as ``--num_jobs=2`` would have them), until ``--trials`` are spent. Functions:
Branin (2-d, minimum 0.397887) and Hartmann-3 (3-d, minimum -3.86278). Columns: our
``tpe``, a plain Optuna script (``TPESampler(seed)`` defaults, ask/tell two in flight) for
comparison, our ``random`` and ``qmc`` (and ``gp`` with ``--gp``). Each cell: the median
over the seeds of the best value found, then [min, max]; lower is better.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from hpsearch.searchfile import spec_from_mapping  # noqa: E402
from hpsearch.strategies.base import Outcome, Proposal  # noqa: E402
from hpsearch.strategies.factory_sampled import make_sampled_strategy  # noqa: E402
from hpsearch.strategies.optuna_samplers import silence_optuna  # noqa: E402

IN_FLIGHT = 2
Function = Callable[[dict[str, float]], float]


def branin(c: dict[str, float]) -> float:
    x1, x2 = c["x1"], c["x2"]
    b, cc = 5.1 / (4 * math.pi ** 2), 5 / math.pi
    return (x2 - b * x1 ** 2 + cc * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(
        x1) + 10


_H3_A = [[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]
_H3_P = [[0.3689, 0.1170, 0.2673], [0.4699, 0.4387, 0.7470], [0.1091, 0.8732, 0.5547],
         [0.0381, 0.5743, 0.8828]]
_H3_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann3(c: dict[str, float]) -> float:
    x = [c["x1"], c["x2"], c["x3"]]
    return -sum(alpha * math.exp(-sum(a * (xi - p) ** 2 for a, xi, p in zip(
        row, x, prow, strict=True))) for alpha, row, prow in zip(
        _H3_ALPHA, _H3_A, _H3_P, strict=True))


#: name -> (function, bounds per parameter, known minimum)
FUNCTIONS: dict[str, tuple[Function, dict[str, tuple[float, float]], float]] = {
    "branin": (branin, {"x1": (-5, 10), "x2": (0, 15)}, 0.397887),
    "hartmann3": (hartmann3, {"x1": (0, 1), "x2": (0, 1), "x3": (0, 1)}, -3.86278),
}


def ours(algorithm: str, function: str, seed: int, trials: int) -> float:
    f, bounds, _ = FUNCTIONS[function]
    spec = spec_from_mapping({
        "script": "f.py", "metrics": ["y"], "algorithm": algorithm, "num_trials": trials,
        "parameters": {k: {"method": "uniform", "low": lo, "high": hi}
                       for k, (lo, hi) in bounds.items()}}, "bench", ROOT, check_script=False)
    strategy = make_sampled_strategy(spec, seed, trials, IN_FLIGHT)
    best, handed = math.inf, 0
    try:
        while handed < trials:
            want = min(IN_FLIGHT, trials - handed)
            batch: list[Proposal] = []
            while len(batch) < want:
                batch += strategy.ask(want - len(batch))
                if len(batch) < want:
                    time.sleep(0.001)  # the sampler is computing in its thread
            handed += len(batch)
            for p in batch:
                y = f(p.config)
                best = min(best, y)
                strategy.tell(Outcome(p.trial, "finished", [y]))
    finally:
        strategy.close()
    return best


def plain_optuna(function: str, seed: int, trials: int) -> float:
    """What an Optuna user writes: TPESampler(seed), ask two, tell two."""
    f, bounds, _ = FUNCTIONS[function]
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    while len(study.trials) < trials:
        batch = [study.ask() for _ in range(min(IN_FLIGHT, trials - len(study.trials)))]
        for trial in batch:
            config = {k: trial.suggest_float(k, lo, hi) for k, (lo, hi) in bounds.items()}
            study.tell(trial, f(config))
    return study.best_value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--gp", action="store_true", help="add our gp (needs torch, slow)")
    args = parser.parse_args()
    silence_optuna()
    columns: dict[str, Callable[[str, int], float]] = {
        "tpe": lambda fn, s: ours("tpe", fn, s, args.trials),
        "optuna TPE": lambda fn, s: plain_optuna(fn, s, args.trials),
        "random": lambda fn, s: ours("random", fn, s, args.trials),
        "qmc": lambda fn, s: ours("qmc", fn, s, args.trials),
    }
    if args.gp:
        columns["gp"] = lambda fn, s: ours("gp", fn, s, args.trials)
    print(f"{args.trials} trials, {IN_FLIGHT} in flight, seeds 0..{args.seeds - 1}: median "
          "best [min, max] (lower is better)")
    print(f"{'function':10} {'optimum':>9}  " + "  ".join(f"{c:>27}" for c in columns))
    for function, (_f, _bounds, optimum) in FUNCTIONS.items():
        cells = []
        for column in columns.values():
            started = time.perf_counter()
            bests = [column(function, seed) for seed in range(args.seeds)]
            seconds = (time.perf_counter() - started) / args.seeds
            cells.append(f"{statistics.median(bests):8.4f} [{min(bests):.3f}, "
                         f"{max(bests):.3f}] {seconds:4.1f}s")
        print(f"{function:10} {optimum:9.4f}  " + "  ".join(f"{c:>27}" for c in cells))
    print("(the seconds are per search)")


if __name__ == "__main__":
    main()
