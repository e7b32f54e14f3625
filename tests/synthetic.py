"""A synthetic search directory, written with hpsearch's own writers, without running a sim.

For the report's tests and ``scripts/bench/bench_report.py``: :func:`build` writes
``search.json`` (:func:`hpsearch.engine.searchdir.describe` of a real search-file spec), the
journal (:class:`hpsearch.engine.journal.Journal`: start, trial, launch, submit, end events with
historical times) and each run's directory (``run.json``/``command.sh`` by
:func:`hpsearch.runs.files.write_run_record`; ``started_at`` and ``exit_code`` in the job
wrapper's format with its mtimes; the summary file; a learning curve in
``hpsearch.report``'s format; ``stderr.log`` of failures). Runs are spread over GPUs as the
GPU backend would place them. Statuses cycle deterministically: of every 20 runs, 1 fails,
2 are pruned (their curve stops early; their metrics are its last point's, with its step in
``steps``, as the driver records them), the rest finish; ``running`` runs at the end have
started and not ended.
"""

from __future__ import annotations

import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.engine.journal import JOURNAL_FILE, Journal
from hpsearch.engine.searchdir import describe, write_description
from hpsearch.runs.files import (
    EXIT_FILE,
    RUNS_DIR,
    SIM_OUT_DIR,
    STARTED_FILE,
    STDERR_FILE,
    write_run_record,
)
from hpsearch.runs.model import run_id_of
from hpsearch.runs.reporter import REPORT_FILE
from hpsearch.spec.searchfile import spec_from_mapping

PARAMETERS = {"lr": {"method": "loguniform", "low": 1e-5, "high": 1e-1},
              "width": {"method": "uniformint", "low": 16, "high": 512},
              "dropout": {"method": "uniform", "low": 0.0, "high": 0.5},
              "opt": ["adam", "sgd", "rmsprop"]}


@dataclass(frozen=True)
class Built:
    out_dir: Path
    statuses: dict[str, int]
    curves: int  # runs with a learning curve
    pruned_with_curve: int
    gpus: int


def _status(k: int, n: int, running: int) -> str:
    if k >= n - running:
        return "running"
    return {7: "failed", 11: "pruned", 17: "pruned"}.get(k % 20, "finished")


def _loss(config: dict[str, Any]) -> float:
    return (0.1 * (math.log10(config["lr"]) + 3) ** 2 + (config["dropout"] - 0.2) ** 2
            + 0.05 * (config["opt"] != "adam") + 0.0002 * abs(config["width"] - 256))


def _touch(path: Path, text: str, when: float) -> None:
    path.write_text(text)
    os.utime(path, (when, when))


def build(out_dir: Path, n: int, *, steps: int = 10, gpus: int = 4, running: int = 0,
          objectives: tuple[str, ...] = ("loss",), seed: int = 0) -> Built:
    """Write an ``n``-run search in ``out_dir`` (see the module docstring); its runs end
    about now."""
    multi = len(objectives) > 1
    mapping = {"script": "train.py", "summary_file": "perf.txt", "metrics": ["loss", "acc"],
               "objective": list(objectives),
               "direction": ["minimize", "maximize"][:len(objectives)],
               "algorithm": "nsga2" if multi else "tpe", "num_trials": n, "seed": seed,
               "parameters": PARAMETERS}
    spec = spec_from_mapping(mapping, "synthetic search", out_dir, check_script=False)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = [f"--search_file={out_dir / 'search.yaml'}", f"--out_dir={out_dir}"]
    write_description(out_dir, describe(spec, "synthetic", out_dir, "local", command, out_dir,
                                        n, False), spec)
    rng = random.Random(seed)
    t0 = time.time() - 80 * n / gpus - 60
    journal = Journal(out_dir / JOURNAL_FILE)
    journal.append("start", t=t0, host="node1", pid=4242, backend="local")
    free = [t0] * gpus
    counts: dict[str, int] = {}
    curves = pruned_curves = 0
    for k in range(n):
        config = {"lr": 10 ** rng.uniform(-5, -1), "width": rng.randint(16, 512),
                  "dropout": rng.uniform(0.0, 0.5), "opt": rng.choice(["adam", "sgd", "rmsprop"])}
        run_id = run_id_of(config, k)
        status = _status(k, n, running)
        counts[status] = counts.get(status, 0) + 1
        gpu = min(range(gpus), key=lambda g: free[g])
        start = free[gpu] + rng.uniform(0.5, 3.0)
        wall = rng.uniform(30, 120) * (0.4 if status == "pruned" else 1.0)
        end = start + wall
        free[gpu] = end
        key = f"k{k:08x}"
        job = f"node1:{10000 + k}"
        run_dir = out_dir / RUNS_DIR / run_id
        sim_out = run_dir / SIM_OUT_DIR
        argv = ["python3", "train.py", f"--out_dir={sim_out}",
                *(f"--{name}={value}" for name, value in config.items())]
        write_run_record(run_dir, {"run_id": run_id, "trial": k, "config": config,
                                   "argv": argv, "cwd": str(out_dir), "attempt": 1,
                                   "launch": key}, argv, out_dir, {})
        journal.append("trial", t=start - 0.2, trial=k, run=run_id, config=config)
        journal.append("launch", t=start - 0.1, key=key, runs=[[run_id, 1]])
        journal.append("submit", t=start - 0.05, key=key, jobs={run_id: job})
        _touch(run_dir / STARTED_FILE, f"launch={key}\njob={job}\nhost=node1\n"
               f"cuda_visible_devices={gpu}\n", start)
        loss = _loss(config)
        taken = steps // 3 if status == "pruned" else steps
        sim_out.mkdir()
        if status != "failed" and steps:
            lines = [json.dumps({"step": s, "t": start + wall * s / steps,
                                 "loss": round(loss + 1.0 / s, 6),
                                 "acc": round(1 - loss / 2 - 0.3 / s, 6)})
                     for s in range(1, taken + 1)]
            (sim_out / REPORT_FILE).write_text("\n".join(lines) + "\n")
            curves += 1
            pruned_curves += status == "pruned"
        if status == "running":
            continue
        metrics = {"loss": loss, "acc": 1 - loss / 2, "finished": 1}
        extra: dict[str, Any] = {"gpu": gpu}
        if status == "pruned" and taken:  # as the driver records it: the last report's values
            metrics = {"loss": round(loss + 1.0 / taken, 6),
                       "acc": round(1 - loss / 2 - 0.3 / taken, 6), "finished": 1}
            extra["steps"] = taken
        exit_code, reason = 0, None
        if status == "failed":
            exit_code, reason = 1, "exit status 1"
            metrics = {}
            (run_dir / STDERR_FILE).write_text(
                "Traceback (most recent call last):\n  File \"train.py\", line 3\n"
                f"RuntimeError: loss is nan at step 3 (lr={config['lr']:.3g})\n")
        else:
            (sim_out / "perf.txt").write_text(
                "".join(f"{name} {value!r}\n" for name, value in metrics.items()))
        _touch(run_dir / EXIT_FILE, f"{exit_code} {key}\n", end)
        journal.append("end", t=end + 0.1, run=run_id, status=status, exit=exit_code,
                       reason=reason, metrics=metrics, wall=wall, extra=extra,
                       attempt=1)
        if k % 500 == 0:
            journal.flush()
    journal.append("stop", t=max(free) + 1, reason="done")
    journal.close()
    return Built(out_dir, counts, curves, pruned_curves, gpus)
