"""Auptimizer's ``experiment.json`` as it is (issue 26 item 5): the files in
``tests/data/auptimizer/`` are shaped like Auptimizer's own examples; the script there is run
unchanged, as Auptimizer runs it (``<script> <config.json>``). It writes the
``#Auptimizer:<value>`` lines ``aup.print_result`` writes by itself, so these tests need no
``aup`` package. The translation is checked as a unit (the search settings it makes), the
searches through the real CLI, and every bad file is one line, exit 2, nothing written.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import REPO, hpsearch_cmd, run_hpsearch
from ssh_fixture import STATE, SshHosts, ssh_hosts  # noqa: F401  (fixture: the SSH hosts)

from hpsearch.errors import UsageError
from hpsearch.runs.auptimizer_runner import CONFIG_FILE
from hpsearch.spec.migrate import auptimizer, format_of

DATA = REPO / "tests" / "data" / "auptimizer"
RUNNER = "-m hpsearch.runs.auptimizer_runner rosenbrock_hpo.py aup_result.txt"


def example(name: str) -> dict:
    return json.loads((DATA / name).read_text())


def mapping(name: str, **changes) -> tuple[dict, list[str]]:
    return auptimizer.to_mapping({**example(name), **changes}, "Auptimizer file e.json", None,
                                 DATA, True)


def rosenbrock(x: float, y: float) -> float:
    return (1 - x) ** 2 + 100 * (y - x * x) ** 2


# -- the translation ------------------------------------------------------------------------
def test_random_becomes_a_random_search_of_the_runner():
    settings, notes = mapping("experiment_random.json")
    assert settings == {
        "script": f"{RUNNER} -", "summary_file": "aup_result.txt", "metrics": ["result"],
        "objective": "result", "direction": "minimize", "algorithm": "random",
        "num_trials": 6, "seed": 1,
        "parameters": {"x": {"method": "uniform", "low": -5, "high": 5},
                       "y": {"method": "uniform", "low": -5, "high": 5}}}
    assert notes == []
    assert format_of(example("experiment_random.json")) == "auptimizer"
    assert auptimizer.suggested_options(example("experiment_random.json"), "e") == (
        {"num_jobs": 2, "max_failures": 1, "visible_gpus": "-1"}, [])


def test_sequence_becomes_a_grid_of_n_points():
    settings, notes = mapping("experiment_sequence.json")
    assert settings["algorithm"] == "grid" and "num_trials" not in settings
    assert settings["parameters"] == {"x": [-1.0, 0.0, 1.0], "y": [-1.0, 1.0]}
    assert notes == []  # "name" is Auptimizer's label of the file: read, not used
    ints, _ = mapping("experiment_sequence.json", parameter_config=[
        {"name": "k", "range": [2, 5], "type": "int"}])
    assert ints["parameters"] == {"k": [2, 3, 4, 5]}


def test_hyperopt_spearmint_and_the_resource_args():
    tpe, notes = mapping("experiment_hyperopt.json")
    assert tpe["algorithm"] == "tpe" and tpe["metrics"] == ["result", "flops"]
    assert tpe["script"] == f"{RUNNER} flops" and tpe["parameters"]["labels"] == [1]
    assert tpe["rerun_best"] == {"save_model": True, "folder_name": "best"}
    assert notes == ["not used: engine"]
    assert auptimizer.suggested_options(example("experiment_hyperopt.json"), "e") == (
        {"num_jobs": 1, "retries": 2, "visible_gpus": "-1"}, [])
    gp, notes = mapping("experiment_spearmint.json")
    assert gp["algorithm"] == "gp" and gp["direction"] == "maximize"
    assert gp["parameters"]["n_layers"] == {"method": "uniformint", "low": 1, "high": 4}
    assert any("pass it as --run_cwd" in n for n in notes)
    assert auptimizer.suggested_options(example("experiment_spearmint.json"), "e")[0] == {
        "num_jobs": 2, "max_failures": 1}


def test_hyperband_and_bohb_hand_the_budget_as_n_iterations():
    hb, notes = mapping("experiment_hyperband.json")
    assert hb["algorithm"] == "hyperband" and hb["direction"] == "maximize"
    assert hb["budget"] == {"parameter": "n_iterations", "min": 1, "max": 27, "eta": 3}
    assert "not used: engine, skip_last" in notes
    bohb, notes = mapping("experiment_bohb.json")
    assert bohb["algorithm"] == "bohb"
    assert bohb["budget"] == {"parameter": "n_iterations", "min": 1, "max": 9, "eta": 3}
    assert "not used: min_points_in_model, n_iterations, top_n_percent" in notes


@pytest.mark.parametrize("file, changes, words", [
    ("experiment_random.json", {"proposer": "passive"}, "proposer passive runs jobs by hand; "
     "hpsearch serve hands out configurations"),
    ("experiment_random.json", {"proposer": "eas"}, "proposer eas is not supported"),
    ("experiment_random.json", {"proposer": "smac"}, "proposer 'smac' does not exist"),
    ("experiment_random.json", {"resource": "tpu"}, "resource 'tpu' must be cpu, gpu or node"),
    ("experiment_random.json", {"resource": "aws"}, "resource aws is not supported"),
    ("experiment_random.json", {"target": "best"}, "target must be min or max"),
    ("experiment_random.json", {"script": "nosuch.py"}, "script 'nosuch.py' not found"),
    ("experiment_random.json", {"parameter_config": [{"name": "x", "range": [5, -5],
                                                      "type": "float"}]},
     "range must be [min, max] with min < max"),
    ("experiment_random.json", {"parameter_config": [{"name": "x", "range": [0, 1],
                                                      "type": "double"}]},
     "type 'double' is not float, int or choice"),
    ("experiment_sequence.json", {"parameter_config": [{"name": "x", "range": [0, 1],
                                                        "type": "float"}]},
     'proposer sequence walks a grid; give the number of points as "n": 10'),
    ("experiment_bohb.json", {"max_budget": 1}, "proposer bohb needs min_budget < max_budget"),
    ("experiment_hyperopt.json", {"resource_args": {"multi_res_labels": "flops"}},
     "multi_res_labels must be a list of names"),
])
def test_a_bad_file_is_one_line(file, changes, words):
    with pytest.raises(UsageError) as err:
        mapping(file, **changes)
    assert words in str(err.value) and "\n" not in str(err.value), str(err.value)


# -- through the CLI ------------------------------------------------------------------------
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "aup_demo"
    shutil.copytree(DATA, folder)
    return folder


def search(tmp_path: Path, name: str, *extra: str, data: dict | None = None):
    folder = project(tmp_path)
    if data is not None:
        (folder / name).write_text(json.dumps(data))
    out = tmp_path / "out"
    rc, _, err = run_hpsearch([f"--search_file={folder / name}", f"--run_cwd={folder}",
                               f"--out_dir={out}", *extra], tmp_path, timeout=180)
    rows = []
    if (out / "search_results.csv").exists():
        with open(out / "search_results.csv", newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
    return rc, err, out, rows


def test_an_auptimizer_experiment_runs_its_script_unchanged(tmp_path):
    rc, err, out, rows = search(tmp_path, "experiment_random.json")
    assert rc == 0, err
    assert "from experiment_random.json: --num_jobs=2 --max_failures=1 --visible_gpus=-1" in err
    assert len(rows) == 6 and all(r["status"] == "finished" for r in rows)
    for row in rows:
        assert float(row["result"]) == pytest.approx(rosenbrock(float(row["x"]),
                                                                float(row["y"])))
        config = json.loads((Path(row["run_dir"]) / "out" / CONFIG_FILE).read_text())
        assert config == {"x": pytest.approx(float(row["x"])),
                          "y": pytest.approx(float(row["y"]))}
    results = [float(r["result"]) for r in rows]
    assert results == sorted(results)  # target min
    curve = (Path(rows[0]["run_dir"]) / "out" / "hpsearch_report.jsonl")
    steps = [json.loads(line) for line in curve.read_text().splitlines()]
    assert [s["step"] for s in steps] == [1, 2]  # the two intermediate results
    assert steps[1]["result"] == pytest.approx(2 * float(rows[0]["result"]))


def test_hyperband_runs_the_script_with_its_budget_as_n_iterations(tmp_path):
    """Auptimizer's hyperband proposer hands each job its budget as ``n_iterations`` in the
    config file: a promoted configuration runs again, same values, with the larger budget."""
    rc, err, _, rows = search(tmp_path, "experiment_hyperband.json")
    assert rc == 0, err
    configs = {r["run_id"]: json.loads((Path(r["run_dir"]) / "out" / CONFIG_FILE).read_text())
               for r in rows}
    by_trial = {r["trial"]: r for r in rows}
    for row in rows:
        assert configs[row["run_id"]]["n_iterations"] == int(row["n_iterations"])
    promoted = [r for r in rows if r["continues"]]
    assert promoted, "no configuration was promoted to a larger budget"
    for row in promoted:
        parent = by_trial[row["continues"]]
        assert int(row["n_iterations"]) == 3 * int(parent["n_iterations"])
        assert (row["x"], row["y"]) == (parent["x"], parent["y"])


def test_a_grid_with_multiple_results(tmp_path):
    data = {**example("experiment_sequence.json"),
            "parameter_config": [*example("experiment_sequence.json")["parameter_config"],
                                 {"name": "labels", "range": [1], "type": "choice"}],
            "resource_args": {"multi_res_labels": ["flops"]}}
    rc, err, _, rows = search(tmp_path, "grid.json", data=data)
    assert rc == 0, err
    assert sorted((float(r["x"]), float(r["y"])) for r in rows) == [
        (x, y) for x in (-1.0, 0.0, 1.0) for y in (-1.0, 1.0)]
    for row in rows:
        assert float(row["flops"]) == abs(float(row["x"])) + abs(float(row["y"]))


def test_save_model_runs_the_best_configuration_once_more_after_the_search(tmp_path):
    data = {**example("experiment_random.json"), "resource_args": {"save_model": True}}
    rc, err, out, rows = search(tmp_path, "save.json", data=data)
    assert rc == 0, err
    by_trial = sorted(rows, key=lambda r: int(r["trial"]))
    searched, rerun = by_trial[:6], by_trial[6]
    assert len(by_trial) == 7 and all(r["save_model"] == "" for r in searched)
    best = min(searched, key=lambda r: float(r["result"]))
    config = json.loads((Path(rerun["run_dir"]) / "out" / CONFIG_FILE).read_text())
    assert config == {"x": pytest.approx(float(best["x"])), "y": pytest.approx(float(best[
        "y"])), "save_model": True, "folder_name": "best"}
    assert rerun["status"] == "finished" and float(rerun["result"]) == pytest.approx(float(
        best["result"]))
    folder = tmp_path / "aup_demo"
    rc, err = run_hpsearch([f"--search_file={folder / 'save.json'}", f"--run_cwd={folder}",
                            f"--out_dir={out}"], tmp_path, timeout=180)[::2]
    assert rc == 0, err
    with open(out / "search_results.csv", newline="") as f:
        assert len(list(csv.DictReader(f, delimiter=";"))) == 7  # nothing ran again


@pytest.mark.parametrize("mode, reason", [("crash", "exit status 3"),
                                          ("silent", "printed no #Auptimizer: line")])
def test_a_failing_script_fails_its_run_and_stops_the_experiment(tmp_path, mode, reason):
    data = {**example("experiment_random.json"), "n_parallel": 1,
            "parameter_config": [*example("experiment_random.json")["parameter_config"],
                                 {"name": "mode", "range": [mode], "type": "choice"}]}
    rc, err, _, rows = search(tmp_path, "failing.json", data=data)
    assert rc != 0 and rc != 2, err
    assert [r["status"] for r in rows] == ["failed"], rows  # --max_failures=1
    assert reason in rows[0]["failure_reason"], rows[0]


@pytest.mark.parametrize("name, words", [
    ("exp_node.json", "an Auptimizer file's resource node) runs on SSH hosts: name them with "
     "--hosts"),
])
def test_bad_files_through_the_cli_are_one_line_and_write_nothing(tmp_path, name, words):
    rc, err, out, _ = search(tmp_path, name)
    errors = [line for line in err.splitlines() if line.startswith("hpsearch: error: ")]
    assert rc == 2 and len(errors) == 1 and words in errors[0], err
    assert not out.exists()


def test_resource_node_becomes_the_ssh_hosts():
    assert auptimizer.suggested_options(example("exp_node.json"), "e") == (
        {"num_jobs": 2, "max_failures": 1, "run_cluster": True, "scheduler": "ssh"}, [])


@pytest.mark.usefixtures("ssh_hosts")
def test_resource_node_runs_on_the_ssh_hosts_the_command_line_names(tmp_path):
    """Auptimizer keeps its nodes in its own database: ``resource: node`` runs on the SSH
    hosts ``--hosts`` names (the real sshds of scripts/ssh/start.sh, see tests/ssh_fixture.py),
    each run's job id naming its host."""
    folder = project(tmp_path)
    data = {**example("experiment_random.json"), "resource": "node"}
    (folder / "node.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    proc = subprocess.run(
        hpsearch_cmd([f"--search_file={folder / 'node.json'}", f"--run_cwd={folder}",
                      f"--out_dir={out}", "--hosts=gpu1,gpu2"]),
        cwd=tmp_path, env=SshHosts(STATE / "ssh_config").env(), capture_output=True,
        text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    assert "from node.json: --num_jobs=2 --max_failures=1 --run_cluster --scheduler=ssh" \
        in proc.stderr
    with open(out / "search_results.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    assert len(rows) == 6 and all(r["status"] == "finished" for r in rows), rows
    for row in rows:
        assert float(row["result"]) == pytest.approx(rosenbrock(float(row["x"]),
                                                                float(row["y"])))
        assert row["job_id"].split(":")[0] in {"gpu1", "gpu2"}, row
