"""``constraints`` on metrics (issue 26 item 4): parsed in one line or refused in one line;
Optuna's tpe and nsga2 are told how far each run is past each bound and steer away from
runs that break one (and a restored search is told the same); through the real CLI, the
results CSV, ``status``, the progress line and the report show the best *feasible* run and
mark the others, and a run without the constraint's metric counts as breaking it.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from conftest import run_hpsearch, write_search
from test_points import ask_one, journal_copy

from hpsearch.errors import UsageError
from hpsearch.spec.constraints import Constraint, feasible
from hpsearch.spec.gridmodule import resolve_algorithm
from hpsearch.spec.searchfile import spec_from_mapping
from hpsearch.strategies.base import Outcome, Proposal
from hpsearch.strategies.optuna.samplers import OptunaStrategy

SPACE = {"x": {"method": "uniform", "low": 0.0, "high": 1.0},
         "y": {"method": "uniform", "low": 0.0, "high": 1.0}}


def spec(algorithm: str = "tpe", constraints: Any = ("mem <= 0.5",), **settings: Any):
    data = {"script": "train.py", "metrics": ["loss", "mem", "cost"], "algorithm": algorithm,
            "num_trials": 30, "parameters": SPACE,
            **({"constraints": list(constraints)} if constraints else {}), **settings}
    return resolve_algorithm(spec_from_mapping(data, "search file s.yaml", Path("."),
                                               check_script=False), None, None, None)


# -- the setting ----------------------------------------------------------------------------
def test_constraints_read_and_judge():
    s = spec(constraints=["mem <= 0.5", "cost>2", " loss < 1e3 "])
    assert s.constraints == (Constraint("mem", "<=", 0.5), Constraint("cost", ">", 2.0),
                             Constraint("loss", "<", 1000.0))
    assert [c.text() for c in s.constraints] == ["mem <= 0.5", "cost > 2.0", "loss < 1000.0"]
    ok = {"mem": 0.5, "cost": 3, "loss": 1}
    assert feasible(ok, s.constraints)
    assert not feasible({**ok, "cost": 2}, s.constraints)  # strict
    assert not feasible({**ok, "mem": float("nan")}, s.constraints)
    assert not feasible({"cost": 3, "loss": 1}, s.constraints)  # no mem: broken
    assert s.constraints[0].violation({"mem": 0.75}) == 0.25
    assert s.constraints[1].violation({"cost": 5}) == -3.0
    assert s.constraints[0].violation({}) == math.inf


@pytest.mark.parametrize("settings, words", [
    ({"constraints": ["mem = 3"]}, "constraint 'mem = 3' must read '<metric> <= <number>'"),
    ({"constraints": ["mem <= lots"]}, "must read '<metric> <= <number>'"),
    ({"constraints": ["mem <= inf"]}, "must read '<metric> <= <number>'"),
    ({"constraints": ["gpu_mem <= 3"]}, "names 'gpu_mem', which is not among the metrics"),
    ({"constraints": [3]}, "constraint 3 must read"),
    ({"algorithm": "cmaes"}, "algorithm cmaes cannot take constraints"),
    ({"algorithm": "gp"}, "algorithm gp cannot take constraints"),
])
def test_bad_constraints_are_one_line(settings, words):
    with pytest.raises(UsageError) as err:
        spec(**settings)
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


# -- Optuna ---------------------------------------------------------------------------------
def measure(config: dict[str, Any]) -> dict[str, float]:
    """The loss is lowest at x = y = 1, where memory is highest: the best feasible runs lie
    on the bound mem = 0.5."""
    return {"loss": (1 - config["x"]) ** 2 + (1 - config["y"]) ** 2,
            "mem": (config["x"] + config["y"]) / 2, "cost": config["x"]}


def run(s, objectives: int = 1, restart_every: int | None = None) -> list[Proposal]:
    proposals: list[Proposal] = []
    outcomes: list[Outcome] = []
    strategy = OptunaStrategy(s, 11, s.num_trials, 1)
    strategy.restore([], [])
    try:
        while not strategy.done:
            for p in ask_one(strategy):
                metrics = measure(p.config)
                proposals.append(p)
                outcomes.append(Outcome(p.trial, "finished", [metrics["loss"], metrics[
                    "cost"]][:objectives], violations=[c.violation(metrics)
                                                       for c in s.constraints] or None))
                strategy.tell(outcomes[-1])
            if restart_every and len(proposals) % restart_every == 0 and not strategy.done:
                strategy.close()
                strategy = OptunaStrategy(s, 11, s.num_trials, 1)
                strategy.restore(*journal_copy(proposals, outcomes, True))
    finally:
        strategy.close()
    return proposals


def test_tpe_told_the_violations_proposes_more_feasible_runs():
    opts = {"algorithm_options": {"n_startup_trials": 8}}
    bound = (Constraint("mem", "<=", 0.5),)
    told = run(spec(**opts))
    blind = run(spec(constraints=(), **opts))
    assert [p.config for p in told[:8]] == [p.config for p in blind[:8]]  # the random start

    def kept(proposals: list[Proposal]) -> int:
        return sum(feasible(measure(p.config), bound) for p in proposals[8:])

    assert kept(told) > 2 * kept(blind) + 5, (kept(told), kept(blind))
    assert [p.config for p in run(spec(**opts), restart_every=7)] == [p.config for p in told]


def test_nsga2_takes_the_violations_and_resumes_the_same_sequence():
    s = spec("nsga2", objective=["loss", "cost"], algorithm_options={"population_size": 6},
             num_trials=20)
    whole = run(s, objectives=2)
    assert len(whole) == 20
    assert [p.config for p in run(s, objectives=2, restart_every=5)] == [
        p.config for p in whole]


# -- the CLI --------------------------------------------------------------------------------
SEARCH = """\
script: sim.py
summary_file: perf.txt
metrics: [acc, loss]
direction: maximize
algorithm: random
num_trials: 12
seed: 4
parameters:
  x: {{method: uniform, low: -3.0, high: 3.0}}
constraints: [{constraint}]
"""


def search(tmp_path: Path, constraint: str):
    s = write_search(tmp_path, {"x": [0]})
    path = tmp_path / "search.yaml"
    path.write_text(SEARCH.format(constraint=constraint))
    rc, _, err = run_hpsearch([f"--search_file={path}", "--run_cwd=proj",
                               f"--out_dir={s.out_dir}", "--visible_gpus=-1",
                               "--num_jobs=1"], tmp_path, timeout=120)
    assert rc == 0, err
    with open(s.out_dir / "search_results.csv", newline="") as f:
        return s, err, list(csv.DictReader(f, delimiter=";"))


def test_the_best_run_shown_is_the_best_feasible_one(tmp_path):
    """The sim's acc is x and its loss -x: ``loss >= -1`` keeps x <= 1 only."""
    s, err, rows = search(tmp_path, "loss >= -1")
    xs = [float(r["x"]) for r in rows]
    feasible_x = [x for x in xs if x <= 1]
    assert 0 < len(feasible_x) < len(xs), "the sim should give runs of both kinds"
    assert [r["feasible"] for r in rows] == ["1"] * len(feasible_x) + ["0"] * (
        len(xs) - len(feasible_x))
    assert xs == sorted(feasible_x, reverse=True) + sorted(
        [x for x in xs if x > 1], reverse=True)
    best = max(feasible_x)
    shown = re.findall(r"best acc=(\S+)", err)
    assert shown and float(shown[-1]) == pytest.approx(best, rel=1e-5), err

    rc, out, _ = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert rc == 0 and f"best acc={best:.6g} " in out, out
    assert out.count("(infeasible: loss >= -1.0)") == min(5, len(xs)) - min(
        5, len(feasible_x)), out

    rc, out, err = run_hpsearch(["report", str(s.out_dir), "-o", str(tmp_path / "r.html")],
                                tmp_path)
    assert rc == 0, err
    page = (tmp_path / "r.html").read_text()
    assert "among the runs that keep loss &gt;= -1.0" in page
    rc, out, _ = run_hpsearch(["report", "--terminal", "--top", "20", str(s.out_dir)],
                              tmp_path)
    assert rc == 0 and out.count("no: loss >= -1.0") == len(xs) - len(feasible_x), out


def test_a_search_whose_runs_all_break_a_constraint_says_so(tmp_path):
    """A run without the metric, or with NaN, breaks the constraint
    (:func:`test_constraints_read_and_judge`); here every run's loss is below the bound."""
    s, _, rows = search(tmp_path, "loss >= 10")
    assert rows and all(r["feasible"] == "0" for r in rows)
    rc, out, _ = run_hpsearch(["status", str(s.out_dir)], tmp_path)
    assert rc == 0 and "no finished run keeps the constraints yet" in out, out
    meta = json.loads((s.out_dir / "search.json").read_text())
    assert meta["constraints"] == ["loss >= 10.0"]
    rc, _, err = run_hpsearch(["report", str(s.out_dir), "-o", str(tmp_path / "r.html")],
                              tmp_path)
    assert rc == 0, err
    assert "no run keeps the constraints; best by acc, infeasible: loss &gt;= 10.0" in (
        tmp_path / "r.html").read_text()
