"""``--log_to mlflow`` and ``hpsearch export --format mlflow`` through the real CLI, read back
with MLflow's own client: one MLflow run per run with its configuration, its curve by step,
its final metrics and its status; exactly once across a kill -9 (also when the driver died
between MLflow's write and its note); a tracking server that does not answer costs the search
nothing (one warning, caught up later); an unknown sink and a missing extra are one line,
exit 2, nothing written.

The sim: ``loss(epoch) = x + 1 / epoch`` reported for 4 epochs (0.2 s each) with
``hpsearch.report``; ``x=fail`` exits 3 at once; ``x=hold`` waits while the file HOLD exists.
With ASHA (rungs at 1, 3 epochs) and one run at a time in grid order, x = 0.1 finishes, 0.9 is
pruned at the first rung and ``fail`` fails.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import hpsearch_cmd, hpsearch_env, run_hpsearch, wait_for

from hpsearch.engine.journal import replay
from hpsearch.runs.curves import read_curve

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import ViewType  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

SIM = '''
import os, sys, time
from hpsearch import report
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
x, out = args["x"], args["out_dir"]
os.makedirs(out, exist_ok=True)
if x == "fail" or x == "flaky" and not os.path.exists({fixed!r}):
    sys.exit(3)
if x == "flaky":
    x = "0.7"
if x == "hold":
    give_up = time.time() + 60
    while os.path.exists({hold!r}) and time.time() < give_up:
        time.sleep(0.05)
    x = "0.5"
for epoch in range(1, 5):
    time.sleep(0.2)
    report(step=epoch, loss=float(x) + 1 / epoch, epoch=epoch)
    if report.should_stop():
        sys.exit(0)
with open(os.path.join(out, "perf.txt"), "w") as f:
    f.write(f"loss {{float(x) + 1 / 4}}\\nfinished 1\\n")
'''

SEARCH = '''
script: sim.py
summary_file: perf.txt
metrics: [loss]
direction: minimize
parameters:
  x: {xs}
  opt: [sgd]
pruner: {pruner}
pruner_options: {{min_resource: 1, reduction_factor: 3, max_resource: 9}}
'''


def write(root: Path, xs: list[str], pruner: str = "asha", log_to: str | None = None) -> Path:
    """The sim and its search file under ``root``; returns the search file."""
    (root / "proj").mkdir(parents=True, exist_ok=True)
    (root / "proj" / "sim.py").write_text(SIM.format(hold=str(root / "HOLD"),
                                                     fixed=str(root / "FIXED")))
    search = root / "search.yaml"
    search.write_text(SEARCH.format(xs=json.dumps(xs), pruner=pruner)
                      + (f"log_to: {log_to}\n" if log_to else ""))
    return search


def args(root: Path, *extra: str) -> list[str]:
    return [f"--search_file={root / 'search.yaml'}", "--run_cwd=proj",
            f"--out_dir={root / 'out'}", "--visible_gpus=-1", "--num_jobs=1",
            "--deterministic_search", "--fail_fast=0", *extra]


def environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """The user's environment without a tracking URI of theirs, with ``env``."""
    base = {k: v for k, v in hpsearch_env().items() if not k.startswith("MLFLOW_")}
    return {**base, **(env or {})}


def run_with(root: Path, argv: list[str], env: dict[str, str] | None = None,
             timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``python -m hpsearch ARGV`` in ``root`` to its end."""
    return subprocess.run(hpsearch_cmd(argv), cwd=root, env=environment(env),
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def mlflow_runs(uri: str, experiment: str = "out",
                view: int = ViewType.ACTIVE_ONLY) -> dict[str, object]:
    """The experiment's MLflow runs by name (a name twice fails the test)."""
    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment!r} in {uri}"
    runs = client.search_runs([found.experiment_id], run_view_type=view, max_results=1000)
    names = [r.info.run_name for r in runs]
    assert len(names) == len(set(names)), f"a run logged twice: {sorted(names)}"
    return {r.info.run_name: r for r in runs}


def assert_logged_as_journaled(uri: str, out_dir: Path) -> None:
    """Every run of the journal is one MLflow run with the same configuration, curve by
    step, final metrics and status."""
    states = replay(out_dir / "journal.jsonl").runs
    runs = mlflow_runs(uri)
    assert set(runs) == set(states)
    client = MlflowClient(tracking_uri=uri)
    expected_status = {"finished": "FINISHED", "failed": "FAILED", "pruned": "KILLED"}
    for run_id, state in states.items():
        run = runs[run_id]
        assert run.info.status == expected_status[state.status], (run_id, state.status)
        tags = run.data.tags
        assert tags["hpsearch.status"] == state.status
        assert tags["hpsearch.reason"] == (state.reason or "")
        assert tags["hpsearch.trial"] == str(state.trial)
        assert tags["hpsearch.search"] == "out" and tags["hpsearch.backend"] == "local"
        assert ("hpsearch.cpu_hours" in tags) == bool(state.usage) and tags["hpsearch.host"]
        assert run.data.params == {"x": state.config["x"], "opt": "sgd"}
        curve = read_curve(out_dir / "runs" / run_id)
        history = [(m.step, m.value) for m in client.get_metric_history(run.info.run_id,
                                                                          "loss")]
        assert history[:len(curve)] == [(p["step"], p["loss"]) for p in curve]
        if state.status != "failed":
            assert run.data.metrics["loss"] == state.metrics["loss"]
            assert len(curve) >= 1
        if state.status == "pruned":  # stopped early, its last report its final values
            assert run.data.metrics["epoch"] < 4


def test_log_to_mlflow_logs_finished_failed_and_pruned_runs(tmp_path):
    write(tmp_path, ["0.1", "0.9", "fail"])
    proc = run_with(tmp_path, args(tmp_path, "--log_to", "mlflow"))
    assert proc.returncode == 1, proc.stderr  # one run failed
    out_dir = tmp_path / "out"
    statuses = sorted(s.status for s in replay(out_dir / "journal.jsonl").runs.values())
    assert statuses == ["failed", "finished", "pruned"]
    assert_logged_as_journaled(f"sqlite:///{out_dir / 'mlflow.db'}", out_dir)
    assert "warning" not in proc.stderr, proc.stderr
    assert all("hpsearch.cpu_hours" in r.data.tags
               for r in mlflow_runs(f"sqlite:///{out_dir / 'mlflow.db'}").values())
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()


def test_a_sqlite_tracking_uri_from_the_environment_and_log_to_in_the_search_file(tmp_path):
    write(tmp_path, ["0.1", "0.9", "fail"], log_to="[mlflow]")
    uri = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    proc = run_with(tmp_path, args(tmp_path), {"MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 1, proc.stderr
    assert_logged_as_journaled(uri, tmp_path / "out")
    assert not (tmp_path / "out" / "mlflow.db").exists()


def notes(out_dir: Path) -> list[dict[str, str]]:
    path = out_dir / "tracking" / "mlflow.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.endswith("}")]


def test_kill_9_mid_search_then_resume_logs_every_run_once(tmp_path, procs):
    """Killed while the third run holds, after the first two were logged; the note of the
    second is lost too (the driver died between MLflow's write and its note): the resumed
    driver logs the rest, and the second is neither doubled nor written again."""
    write(tmp_path, ["0.1", "0.2", "hold", "0.3"], pruner="none")
    hold = tmp_path / "HOLD"
    hold.write_text("")
    out_dir = tmp_path / "out"
    driver = subprocess.Popen(hpsearch_cmd(args(tmp_path, "--log_to=mlflow")), cwd=tmp_path,
                              env=environment(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(driver)
    wait_for(lambda: len(notes(out_dir)) >= 2, timeout=120, what="two runs logged")
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    path = out_dir / "tracking" / "mlflow.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1]) + lines[1][:10])  # the second note torn off
    hold.unlink()
    proc = run_with(tmp_path, args(tmp_path, "--log_to=mlflow"))
    assert proc.returncode == 0, proc.stderr
    uri = f"sqlite:///{out_dir / 'mlflow.db'}"
    runs = mlflow_runs(uri, view=ViewType.ALL)  # none deleted and written again
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs.values())
    assert_logged_as_journaled(uri, out_dir)
    assert {n["run"] for n in notes(out_dir)} == set(runs)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_tracking_server_costs_the_search_nothing(tmp_path):
    """The search finishes with one warning; the next driver on the directory logs the runs
    once the store answers."""
    write(tmp_path, ["0.1", "0.2", "0.3"], pruner="none")
    dead = {"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{closed_port()}"}
    proc = run_with(tmp_path, args(tmp_path, "--log_to=mlflow"), dead)
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in proc.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1 and "mlflow" in warnings[0], proc.stderr
    assert "3 run(s) not logged yet" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    uri = f"sqlite:///{tmp_path / 'back.db'}"
    proc = run_with(tmp_path, args(tmp_path, "--log_to=mlflow"), {"MLFLOW_TRACKING_URI": uri})
    assert proc.returncode == 0, proc.stderr
    assert_logged_as_journaled(uri, tmp_path / "out")


def test_a_tracking_server_that_never_answers_holds_up_the_search_a_minute_at_most(tmp_path):
    """A server that takes the connection and never answers: MLflow's client waits on it
    in the sink's thread; the runs go on, and the driver ends after its bounded wait."""
    write(tmp_path, ["0.1", "0.2"], pruner="none")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        proc = run_with(tmp_path, args(tmp_path, "--log_to=mlflow"),
                        {"MLFLOW_TRACKING_URI": uri}, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in csv_rows(tmp_path / "out")] == ["finished", "finished"]
    assert "2 run(s) not logged yet" in proc.stderr, proc.stderr


def csv_rows(out_dir: Path) -> list[dict[str, str]]:
    import csv

    with open(out_dir / "search_results.csv", newline="") as f:
        return list(csv.DictReader(f, delimiter=";"))


def test_a_failed_run_retried_until_it_finished_is_one_mlflow_run(tmp_path):
    """Logged as failed, then (after ``hpsearch retry``) as finished: one active run, its
    new verdict."""
    write(tmp_path, ["0.1", "flaky"], pruner="none")
    proc = run_with(tmp_path, args(tmp_path, "--log_to=mlflow"))
    assert proc.returncode == 1, proc.stderr
    uri = f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}"
    assert sorted(r.info.status for r in mlflow_runs(uri).values()) == ["FAILED", "FINISHED"]
    (tmp_path / "FIXED").write_text("")
    proc = run_with(tmp_path, ["retry", str(tmp_path / "out")])
    assert proc.returncode == 0, proc.stderr
    runs = mlflow_runs(uri)
    assert sorted(r.info.status for r in runs.values()) == ["FINISHED", "FINISHED"]
    assert_logged_as_journaled(uri, tmp_path / "out")


def test_export_format_mlflow_logs_a_finished_search_once(tmp_path):
    write(tmp_path, ["0.1", "0.9", "fail"])
    proc = run_with(tmp_path, args(tmp_path))
    assert proc.returncode == 1, proc.stderr
    out_dir = tmp_path / "out"
    assert not (out_dir / "mlflow.db").exists()  # nothing logged without --log_to
    for _ in range(2):
        proc = run_with(tmp_path, ["export", str(out_dir), "--format", "mlflow"])
        assert proc.returncode == 0 and "3 runs logged to mlflow" in proc.stdout, proc.stderr
    uri = f"sqlite:///{out_dir / 'mlflow.db'}"
    assert len(mlflow_runs(uri, view=ViewType.ALL)) == 3  # the second export changed nothing
    assert_logged_as_journaled(uri, out_dir)
    rc, _, err = run_hpsearch(["export", str(out_dir), "--format", "mlflow", "-o", "x.db"],
                              tmp_path)
    assert rc == 2 and "leave out -o" in err and len(err.splitlines()) == 1, err


def test_export_format_mlflow_of_a_hypnettorch_directory(tmp_path):
    search = tmp_path / "search_2024-01-01_12-00-00"
    search.mkdir()
    (search / "hpsearch_config_mine.py").write_text(
        'grid = {"lr": [0.001, 0.01]}\n_SCRIPT_NAME = "train.py"\n'
        '_SUMMARY_FILENAME = "performance_overview.txt"\n'
        '_SUMMARY_KEYWORDS = ["acc_test", "finished"]\n_PERFORMANCE_KEY = "acc_test"\n'
        "_PERFORMANCE_SORT_ASC = False\n")
    for i, (lr, acc, finished) in enumerate([("0.001", "0.91", "1"), ("0.01", "0.5", "0")]):
        sim = search / f"sim_2024-01-01_12-00-0{i}_{i}"
        sim.mkdir()
        (sim / "hpsearch_command.sh").write_text(
            f"#!/bin/sh\npython3 train.py --out_dir={sim} --lr={lr}\n")
        (sim / "performance_overview.txt").write_text(f"acc_test {acc}\nfinished {finished}\n")
    proc = run_with(tmp_path, ["export", str(search), "--format", "mlflow"])
    assert proc.returncode == 0, proc.stderr
    runs = mlflow_runs(f"sqlite:///{search / 'mlflow.db'}", experiment=search.name)
    got = sorted((r.data.params["lr"], r.info.status, r.data.metrics.get("acc_test"))
                 for r in runs.values())
    assert got == [("0.001", "FINISHED", 0.91), ("0.01", "FAILED", 0.5)]


@pytest.mark.parametrize("where", ["flag", "search_file"])
def test_an_unknown_sink_is_one_line_and_writes_nothing(tmp_path, where):
    write(tmp_path, ["0.1"], log_to="[mlflow, nope]" if where == "search_file" else None)
    extra = ("--log_to=nope",) if where == "flag" else ()
    rc, out, err = run_hpsearch(args(tmp_path, *extra), tmp_path)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "'nope' is not a tracking sink; use one of mlflow, tensorboard, wandb" in err
    assert not (tmp_path / "out").exists()


def test_a_missing_mlflow_is_one_line_naming_the_extra(tmp_path):
    """A Python where ``import mlflow`` fails as it does when the package is absent (a
    package of that name earlier on the path that raises ModuleNotFoundError): uninstalling
    the real one would break the other tests running beside this one."""
    hidden = tmp_path / "hide"
    (hidden / "mlflow").mkdir(parents=True)
    (hidden / "mlflow" / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'mlflow'\", name='mlflow')\n")
    write(tmp_path, ["0.1"])
    proc = run_with(tmp_path, args(tmp_path, "--log_to=mlflow"), {"PYTHONPATH": str(hidden)})
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "pip install 'hpsearch[mlflow]'" in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = run_with(tmp_path, ["export", str(tmp_path / "nowhere"), "--format", "mlflow"],
                    {"PYTHONPATH": str(hidden)})
    assert proc.returncode == 2 and "pip install 'hpsearch[mlflow]'" in proc.stderr
