"""Function objectives (``script: obj.py:my_objective``): the runner in the run's process, on
local slots and on the LSF emulator; an exception fails the run with its last line."""

from __future__ import annotations

import csv
import json
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, run_hpsearch
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

OBJECTIVES = '''\
import json, os

def my_objective(config, reporter):
    with open(os.path.join(os.environ["HPSEARCH_OUT_DIR"], "config.json"), "w") as f:
        json.dump(config, f)
    if config["mode"] == "raise":
        raise ValueError(f"bad x {config['x']}")
    for epoch in range(3):
        reporter(loss=config["x"] * (3 - epoch), acc=0.5 + epoch / 10)
    if config["mode"] == "dict":
        return {"acc": 0.99}

def returns_dict(config):
    return {"loss": config["x"] ** 2, "acc": 1, "note": "text is left out"}

def returns_number(config):
    return 0.5

def silent(config):
    return None

def exits(config):
    raise SystemExit(4)

class Trainable:
    pass

async def coroutine(config):
    return {}
'''

SEARCH = """\
script: {script}
metrics: [loss, acc]
parameters:
  x: [1, 2.5]
  mode: {modes}
  flag: [true]
  layers: [[64, 32]]
  name: ['"two words"']
"""


def project(tmp_path: Path, script: str = "obj.py:my_objective", modes: str = "[ok]") -> Path:
    sim = tmp_path / "proj"
    sim.mkdir(exist_ok=True)
    (sim / "obj.py").write_text(OBJECTIVES)
    (sim / "search.yaml").write_text(SEARCH.format(script=script, modes=modes))
    return sim


def args(tmp_path: Path, *extra: str) -> list[str]:
    return ["--search_file=proj/search.yaml", "--run_cwd=proj", f"--out_dir={tmp_path / 'out'}",
            *extra]


def rows(tmp_path: Path) -> list[dict[str, str]]:
    with open(tmp_path / "out" / "search_results.csv", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def run_dir_of(tmp_path: Path, row: dict[str, str]) -> Path:
    return Path(row["run_dir"])


def test_function_objective_on_local_slots(tmp_path: Path) -> None:
    project(tmp_path, modes="[ok, dict]")
    rc, _, err = run_hpsearch(args(tmp_path, "--visible_gpus=-1", "--num_jobs=2"), tmp_path)
    assert rc == 0, err
    got = {(r["x"], r["mode"]): r for r in rows(tmp_path)}
    assert len(got) == 4 and all(r["status"] == "finished" for r in got.values())
    assert float(got["2.5", "ok"]["loss"]) == 2.5  # the last report
    assert float(got["2.5", "ok"]["acc"]) == pytest.approx(0.7)
    assert float(got["1", "dict"]["acc"]) == 0.99 and float(got["1", "dict"]["loss"]) == 1
    run_dir = run_dir_of(tmp_path, got["2.5", "ok"])
    config = json.loads((run_dir / "out" / "config.json").read_text())
    assert config == {"x": 2.5, "mode": "ok", "flag": True, "layers": [64, 32],
                      "name": "two words"}  # JSON types from run.json, quotes stripped
    reports = [json.loads(ln) for ln in (run_dir / "out" / "hpsearch_report.jsonl").open()]
    assert [(r["step"], r["loss"]) for r in reports] == [(1, 7.5), (2, 5.0), (3, 2.5)]
    command = (run_dir / "command.sh").read_text()
    assert "-m hpsearch.objective_runner obj.py:my_objective performance_overview.txt " \
           f"--out_dir={run_dir / 'out'} --x=2.5" in command


def test_an_exception_fails_the_run_with_its_last_line(tmp_path: Path) -> None:
    project(tmp_path, modes="[ok, raise]")
    rc, _, err = run_hpsearch(args(tmp_path, "--visible_gpus=-1", "--retries=1"), tmp_path)
    assert rc == 1, err
    failed = [r for r in rows(tmp_path) if r["status"] == "failed"]
    assert sorted(r["failure_reason"] for r in failed) == [
        "exit status 1: ValueError: bad x 1", "exit status 1: ValueError: bad x 2.5"]
    assert all(r["attempts"] == "2" for r in failed)
    run_dir = run_dir_of(tmp_path, failed[0])
    stderr = (run_dir / "stderr.log").read_text()
    assert "Traceback (most recent call last)" in stderr and "raise ValueError" in stderr
    assert (run_dir / "attempts" / "1" / "reason").read_text().startswith("ValueError: bad x")
    assert "ValueError: bad x" in err  # the driver shows why, the first time


@pytest.mark.parametrize(("function", "status", "reason"), [
    ("returns_dict", "finished", ""),
    ("returns_number", "failed", "exit status 1: returns_number returned float 0.5; return a "
                                 "dict such as {'loss': 0.1} or call reporter(loss=0.1)"),
    ("silent", "failed", "exit status 1: silent returned no metrics and called reporter() "
                         "never; return a dict such as {'loss': 0.1} or call "
                         "reporter(loss=0.1)"),
    ("exits", "failed", "exit status 1: exits called sys.exit(4)"),
])
def test_what_a_function_returns(tmp_path: Path, function: str, status: str,
                                 reason: str) -> None:
    project(tmp_path, script=f"obj.py:{function}")
    rc, _, err = run_hpsearch(args(tmp_path, "--visible_gpus=-1", "--fail_fast=0"), tmp_path)
    assert rc == (0 if status == "finished" else 1), err
    for row in rows(tmp_path):
        assert (row["status"], row["failure_reason"]) == (status, reason)
    if function == "returns_dict":
        summary = (run_dir_of(tmp_path, rows(tmp_path)[0]) / "out" /
                   "performance_overview.txt").read_text()
        assert summary.endswith("acc 1\nfinished 1\n") and "note" not in summary


@pytest.mark.parametrize(("script", "expected"), [
    ("obj.py:my_objectiv", "obj.py defines no 'my_objectiv' at its top level (did you mean "
                           "my_objective?)"),
    ("obj.py:Trainable", "Trainable is a class (a Ray Tune trainable?)"),
    ("obj.py:coroutine", "coroutine is async"),
    ("obj.py:my_objective extra", "a function objective takes no words after obj.py:"),
    ("gone.py:my_objective", "'gone.py' not found in --run_cwd"),
])
def test_bad_function_targets_exit_2_before_anything_is_written(tmp_path: Path, script: str,
                                                               expected: str) -> None:
    project(tmp_path, script=f"'{script}'")
    rc, _, err = run_hpsearch(args(tmp_path, "--visible_gpus=-1"), tmp_path)
    assert rc == 2 and expected in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_a_function_takes_no_config_template(tmp_path: Path) -> None:
    project(tmp_path)
    (tmp_path / "model.yml").write_text("x: 1\n")
    rc, _, err = run_hpsearch(args(tmp_path, "--visible_gpus=-1",
                                   "--config_template=model.yml"), tmp_path)
    assert rc == 2 and "is a function, which gets its parameters as a dict" in err, err


def test_function_objective_on_the_lsf_emulator(tmp_path: Path, lsf) -> None:  # noqa: F811
    project(tmp_path, modes="[ok, raise]")
    rc, _, err = run_hpsearch(args(tmp_path, "--run_cluster", "--scheduler=lsf",
                                   "--resources=", "--num_jobs=4"), tmp_path, timeout=120)
    assert rc == 1, err
    got = {(r["x"], r["mode"]): r for r in rows(tmp_path)}
    assert got["2.5", "ok"]["status"] == "finished" and float(got["2.5", "ok"]["loss"]) == 2.5
    assert got["1", "raise"]["failure_reason"] == "exit status 1: ValueError: bad x 1"
    assert all("[" in r["job_id"] for r in got.values())  # LSF array elements


def test_hpogrid_example_project_runs_here(tmp_path: Path) -> None:
    sim = REPO / "sims" / "hpogrid"
    out = tmp_path / "out"
    rc, _, err = run_hpsearch([f"--search_file={sim / 'project.yaml'}", f"--run_cwd={sim}",
                               f"--out_dir={out}", "--visible_gpus=-1", "--num_searches=4"],
                              tmp_path)
    assert rc == 0, err
    assert "from project.yaml: --num_jobs=2" in err
    assert "algorithm hyperopt runs as tpe" in err
    with open(out / "search_results.csv", newline="") as f:
        table = list(csv.DictReader(f, delimiter=";"))
    assert "scheduler asynchyperband runs as pruner: asha" in err
    assert len(table) == 4 and {r["status"] for r in table} <= {"finished", "pruned"}
    # every run ranks at every rung as it ranks at its end: the best one is never pruned
    finished = [r for r in table if r["status"] == "finished"]
    assert finished
    for row in finished:
        height, width = float(row["height"]), float(row["width"])
        assert float(row["loss"]) == pytest.approx((height - 14) ** 2 - abs(width - 3))
        assert row["epochs"] == "5"


HPOGRID_PRUNED = """\
model_config:
  script: obj.py
  model: my_objective
search_space:
  x: {method: uniform, dimension: {low: 0, high: 1}}
hpo_config:
  metric: loss
  mode: min
  num_trials: 2
  max_concurrent: 1
  scheduler: asynchyperband
  scheduler_param: {grace_period: 1, reduction_factor: 2, max_t: 8, brackets: 1}
"""

PRUNED_OBJECTIVE = """\
import os, time

def my_objective(config, reporter):
    try:  # the first run: good at every step; every later one: worse, until it is stopped
        os.close(os.open("first-run", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        loss = 0.0
    except FileExistsError:
        loss = 10.0
    for epoch in range(1, 8 if loss == 0 else 1200):  # at most a minute, if never stopped
        reporter(loss=loss, epoch=epoch)
        if reporter.should_stop():
            with open(os.path.join(os.environ["HPSEARCH_OUT_DIR"], "saw-stop"), "w"):
                pass
            return
        if loss:
            time.sleep(0.05)
"""


def test_hpogrid_asynchyperband_prunes_a_hopeless_run(tmp_path: Path) -> None:
    sim = tmp_path / "proj"
    sim.mkdir()
    (sim / "obj.py").write_text(PRUNED_OBJECTIVE)
    (sim / "project.yaml").write_text(HPOGRID_PRUNED)
    rc, _, err = run_hpsearch(["--search_file=proj/project.yaml", "--run_cwd=proj",
                               f"--out_dir={tmp_path / 'out'}", "--visible_gpus=-1"],
                              tmp_path, timeout=120)
    assert rc == 0, err
    assert ("asynchyperband runs as pruner: asha on the reporter's steps (min_resource: 1, "
            "max_resource: 8, reduction_factor: 2)") in err
    assert "scheduler_param not used here: brackets" in err
    first, second = sorted(rows(tmp_path), key=lambda r: int(r["run_id"].split("-")[0]))
    assert first["status"] == "finished" and float(first["loss"]) == 0
    assert second["status"] == "pruned" and float(second["loss"]) == 10
    assert (Path(second["run_dir"]) / "out" / "saw-stop").exists()  # stopped cooperatively


def test_dry_run_prints_the_runner_command(tmp_path: Path) -> None:
    project(tmp_path)
    rc, out, err = run_hpsearch(args(tmp_path, "--visible_gpus=-1", "--dry_run"), tmp_path)
    assert rc == 0, err
    lines = out.splitlines()
    assert len(lines) == 2
    assert all(" -m hpsearch.objective_runner obj.py:my_objective performance_overview.txt "
               "--out_dir=" in ln for ln in lines)
    assert not (tmp_path / "out").exists()


def test_runner_called_by_hand_wrongly(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import hpsearch_env

    runner = [sys.executable, "-m", "hpsearch.objective_runner"]
    done = subprocess.run([*runner, "obj.py"], capture_output=True, text=True,
                          env=hpsearch_env(), cwd=tmp_path)
    assert done.returncode == 2 and "usage:" in done.stderr
    (tmp_path / "obj.py").write_text(textwrap.dedent(OBJECTIVES))
    done = subprocess.run([*runner, "obj.py:silent", "perf.txt", f"--out_dir={tmp_path / 'o'}"],
                          capture_output=True, text=True, env=hpsearch_env(), cwd=tmp_path)
    assert done.returncode == 2 and "cannot read the configuration" in done.stderr


def test_fail_fast_sees_runs_that_fail_alike_with_different_numbers(tmp_path: Path) -> None:
    project(tmp_path, modes="[raise]")
    (tmp_path / "proj" / "search.yaml").write_text(SEARCH.format(
        script="obj.py:my_objective", modes="[raise]").replace("x: [1, 2.5]",
                                                              "x: [1, 2, 3, 4, 5, 6]"))
    rc, _, err = run_hpsearch(args(tmp_path, "--visible_gpus=-1", "--fail_fast=3",
                                   "--deterministic_search", "--num_jobs=1"), tmp_path,
                              timeout=120)  # one slot: no fourth run is under way at the stop
    assert rc == 3, err  # stopped: "bad x 1", "bad x 2", "bad x 3" are one kind of failure
    assert "the first 3 runs all failed (exit status 1: ValueError: bad x 3)" in err
    assert err.count("; its stderr: ") == 1  # the failure is shown once, not once a number
    assert len(rows(tmp_path)) <= 6 and sum(r["status"] == "failed" for r in rows(tmp_path)) == 3
