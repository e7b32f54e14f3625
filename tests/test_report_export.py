"""``hpsearch export``: an Optuna journal that Optuna opens as a study whose best trial is
ours, and the JSON and CSV files."""

from __future__ import annotations

import csv
import json

import optuna
import pytest
import synthetic
from conftest import REPO, run_hpsearch
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState


def load(path, name):
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(
        str(path))))


@pytest.fixture(scope="module")
def tpe_search(tmp_path_factory):
    """The logreg example's TPE search file, 30 real runs."""
    out = tmp_path_factory.mktemp("tpe") / "logreg_tpe"
    rc, _, err = run_hpsearch([f"--search_file={REPO / 'sims/logreg/search.yaml'}",
                               f"--run_cwd={REPO / 'sims/logreg'}", f"--out_dir={out}",
                               "--visible_gpus=-1", "--num_jobs=2"], REPO, timeout=300)
    assert rc == 0, err
    return out


def test_optuna_export_best_trial_is_ours(tpe_search, tmp_path):
    rc, out, err = run_hpsearch(["export", str(tpe_search), "--format", "optuna"], tmp_path)
    assert rc == 0, err
    path = tpe_search / "optuna_journal.log"
    assert str(path) in out
    study = load(path, "logreg_tpe")
    with open(tpe_search / "search_results.csv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    best = rows[0]  # sorted by loss_test, ascending
    assert len(study.trials) == 30 and study.directions == [
        optuna.study.StudyDirection.MINIMIZE]
    assert study.best_value == float(best["loss_test"])
    assert study.best_trial.user_attrs["run_id"] == best["run_id"]
    assert study.best_trial.number == int(best["trial"])
    params = study.best_trial.params
    assert params["lr"] == float(best["lr"]) and params["epochs"] == int(best["epochs"])
    assert params["batch_size"] == int(best["batch_size"])
    dists = study.best_trial.distributions
    assert dists["lr"].log and dists["epochs"].low == 2 and dists["epochs"].high == 20
    assert dists["batch_size"].choices == (16, 32, 128)
    assert study.best_trial.user_attrs["metrics"]["acc_test"] == float(best["acc_test"])
    assert study.metric_names == ["loss_test"]
    # Optuna's own analysis runs on it
    assert set(optuna.importance.get_param_importances(
        study, evaluator=optuna.importance.PedAnovaImportanceEvaluator())) == set(params)
    rc, _, err = run_hpsearch(["export", str(tpe_search), "--format", "optuna"], tmp_path)
    assert rc == 0, err  # written again: replaced, not appended to
    assert len(load(path, "logreg_tpe").trials) == 30


def test_optuna_export_states_curves_and_pareto(tmp_path):
    built = synthetic.build(tmp_path / "mo", 40, steps=6, running=2, objectives=("loss", "acc"))
    out = tmp_path / "mo.log"
    rc, _, err = run_hpsearch(["export", str(built.out_dir), "--format", "optuna", "-o",
                               str(out)], tmp_path)
    assert rc == 0, err
    study = load(out, "mo")
    states = [t.state for t in study.trials]
    assert states.count(TrialState.COMPLETE) == built.statuses["finished"]
    assert states.count(TrialState.PRUNED) == built.statuses["pruned"]
    assert states.count(TrialState.FAIL) == built.statuses["failed"]
    assert states.count(TrialState.RUNNING) == 2
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert all(sorted(t.intermediate_values) == [1, 2] for t in pruned)  # stopped at 6 // 3
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert all(sorted(t.intermediate_values) == list(range(1, 7)) for t in done)
    assert all(t.datetime_start < t.datetime_complete for t in done)
    rc, _, err = run_hpsearch(["report", str(built.out_dir)], tmp_path)
    assert rc == 0, err
    html = (built.out_dir / "report.html").read_text()
    data = json.loads(html.split('id="hpsearch-data">', 1)[1].split("</script>", 1)[0])
    ours = sorted(data["runs"]["id"][i] for i in data["pareto"])
    assert ours == sorted(t.user_attrs["run_id"] for t in study.best_trials)


def test_json_and_csv_exports(tpe_search, tmp_path):
    rc, _, err = run_hpsearch(["export", str(tpe_search), "--format", "json"], tmp_path)
    assert rc == 0, err
    data = json.loads((tpe_search / "export.json").read_text())
    assert data["format"] == "hpsearch-export" and data["search"]["objectives"] == ["loss_test"]
    assert len(data["runs"]) == 30 and [r["trial"] for r in data["runs"]] == list(range(30))
    run = data["runs"][0]
    assert run["status"] == "finished" and set(run["config"]) == {"lr", "l2", "epochs",
                                                                  "batch_size"}
    assert run["starts"][0]["end"] > run["starts"][0]["start"]
    rc, _, err = run_hpsearch(["export", str(tpe_search), "--format", "csv", "-o",
                               str(tmp_path / "t.csv")], tmp_path)
    assert rc == 0, err
    with open(tmp_path / "t.csv", newline="") as f:
        ours = list(csv.DictReader(f))
    with open(tpe_search / "search_results.csv", newline="") as f:
        theirs = list(csv.DictReader(f, delimiter=";"))
    assert ours == theirs
