"""The W&B sink, read back from the offline runs wandb itself wrote.

Each test logs records through the sink in a real Python process of its own (wandb starts
its service process and holds global state: it stays out of pytest's), then reads every
``offline-run-*/run-<id>.wandb`` with :mod:`tests.wandb_files` (wandb's own record schema).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import hpsearch_env, wait_for
from wandb_files import offline_runs

from hpsearch.errors import UsageError
from hpsearch.tracking.record import RunRecord, SearchInfo, SinkError
from hpsearch.tracking.wandb import WandbSink, run_id

#: Logs the records given as JSON (argv[2]) through one WandbSink on argv[1].
LOGGER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from hpsearch.tracking.record import RunRecord, SearchInfo
    from hpsearch.tracking.wandb import WandbSink

    out = Path(sys.argv[1])
    sink = WandbSink(out)
    sink.open(SearchInfo("sweep", out, {"loss": "minimize"}, ("lr", "opt")))
    for fields in json.loads(sys.argv[2]):
        fields["curve"] = tuple((step, values) for step, values in fields.get("curve", ()))
        sink.log(RunRecord(**fields))
    sink.close()
""")

FINISHED: dict[str, Any] = {
    "run_id": "run_0001", "config": {"lr": 0.1, "opt": "adam", "layers": [64, 64]},
    "status": "finished", "metrics": {"loss": 0.25, "acc": 0.9},
    "curve": [[1, {"loss": 0.8}], [2, {"loss": 0.5}], [3, {"loss": 0.3}]],
    "tags": {"trial": "1", "backend": "local", "gpu_hours": "0.5"}}
FAILED: dict[str, Any] = {"run_id": "run_0002", "config": {"lr": 0.01, "opt": "sgd"},
                          "status": "failed", "reason": "exit code 1"}
PRUNED: dict[str, Any] = {"run_id": "run_0003", "config": {"lr": 0.5, "opt": "sgd"},
                          "status": "pruned", "reason": "pruned at step 1",
                          "curve": [[1, {"loss": 2.0}]]}
#: bad values from a run: a NaN final metric, an infinite one, a NaN configuration value
BAD_VALUES: dict[str, Any] = {"run_id": "run_0004", "config": {"lr": float("nan")},
                              "status": "finished",
                              "metrics": {"loss": float("nan"), "acc": float("inf")}}


def wandb_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A user's environment without W&B settings of its own; wandb's config and cache
    directories inside the test's."""
    env = {key: value for key, value in hpsearch_env().items()
           if not key.startswith("WANDB_")}
    for name in ("CONFIG", "CACHE", "DATA", "ARTIFACT"):
        env[f"WANDB_{name}_DIR"] = str(tmp_path / "wandb-home" / name.lower())
    env.update(extra)
    return env


def log_records(tmp_path: Path, *records: dict[str, Any],
                **env: str) -> subprocess.CompletedProcess:
    """Log ``records`` through a WandbSink on ``tmp_path/out`` in a process of its own."""
    proc = subprocess.run(
        [sys.executable, "-P", "-c", LOGGER, str(tmp_path / "out"), json.dumps(records)],
        env=wandb_env(tmp_path, **env), capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_wandb_offline_runs_read_back(tmp_path: Path) -> None:
    """Offline by default: one run per record, in the search's group and project, named
    by the run id, with its configuration, history by step, final metrics as summary,
    status as tag and exit code, reason as notes; nothing on our stdout or stderr."""
    proc = log_records(tmp_path, FINISHED, FAILED, PRUNED, BAD_VALUES)
    assert proc.stdout == ""
    assert "wandb" not in proc.stderr

    runs = offline_runs(tmp_path / "out" / "wandb")
    assert sorted(runs) == sorted(run_id("sweep", r) for r in
                                  ("run_0001", "run_0002", "run_0003", "run_0004"))
    first = runs[run_id("sweep", "run_0001")]
    assert (first.run.project, first.run.run_group, first.run.display_name) == (
        "sweep", "sweep", "run_0001")
    assert list(first.run.tags) == ["finished"]
    assert {k: v for k, v in first.config.items() if not k.startswith("_")} == {
        "lr": 0.1, "opt": "adam", "layers": [64, 64]}
    assert [(step, values["loss"]) for step, values in first.history] == [
        (1, 0.8), (2, 0.5), (3, 0.3)]
    assert first.summary["loss"] == 0.25 and first.summary["acc"] == 0.9
    assert first.summary["hpsearch/status"] == "finished"
    assert (first.summary["hpsearch/trial"], first.summary["hpsearch/gpu_hours"]) == (
        "1", "0.5")
    assert first.exit_code == 0

    failed = runs[run_id("sweep", "run_0002")]
    assert (failed.exit_code, failed.run.notes, list(failed.run.tags)) == (
        1, "exit code 1", ["failed"])
    assert failed.summary["hpsearch/reason"] == "exit code 1"
    pruned = runs[run_id("sweep", "run_0003")]
    assert (pruned.exit_code, list(pruned.run.tags)) == (0, ["pruned"])
    bad = runs[run_id("sweep", "run_0004")]
    assert (bad.exit_code, bad.summary["acc"]) == (0, float("inf"))


def test_wandb_logging_again_leaves_one_run_per_id(tmp_path: Path) -> None:
    """A run logged again (a later process, after a crash between writing and noting it)
    goes to the same W&B run id and replaces the offline copy: one directory per id,
    holding the latest record."""
    log_records(tmp_path, FINISHED, FAILED)
    written = time.time()
    wait_for(lambda: int(time.time()) > int(written), timeout=5,
             what="the next second (offline directories are named by the second)")
    log_records(tmp_path, {**FINISHED, "metrics": {"loss": 0.2}})

    wandb_dir = tmp_path / "out" / "wandb"
    ours = run_id("sweep", "run_0001")
    assert len(list(wandb_dir.glob(f"offline-run-*-{ours}"))) == 1
    runs = offline_runs(wandb_dir)
    assert sorted(runs) == sorted([ours, run_id("sweep", "run_0002")])
    assert runs[ours].summary["loss"] == 0.2
    assert [step for step, _ in runs[ours].history] == [1, 2, 3]


def test_wandb_environment_chooses_mode_and_project(tmp_path: Path) -> None:
    """``WANDB_PROJECT`` names the project; ``WANDB_MODE`` (here ``disabled``) overrides
    offline: a disabled W&B writes no run."""
    log_records(tmp_path, FINISHED, WANDB_PROJECT="lab-project")
    (only,) = offline_runs(tmp_path / "out" / "wandb").values()
    assert (only.run.project, only.run.run_group) == ("lab-project", "sweep")

    log_records(tmp_path / "disabled", FINISHED, WANDB_MODE="disabled")
    assert not list((tmp_path / "disabled").glob("out/wandb/offline-run-*"))


def test_script_calling_wandb_init_lands_in_the_search_group(tmp_path: Path) -> None:
    """The zero-change path: a training script's own ``wandb.init(mode="offline")`` reads
    ``WANDB_RUN_GROUP``, ``WANDB_NAME`` and ``WANDB_JOB_TYPE`` from its environment (the
    variables hpsearch sets for every run) and groups itself under the search."""
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import wandb
        run = wandb.init(mode="offline", config={"lr": 0.1})
        run.log({"loss": 0.5}, step=1)
        run.finish()
    """))
    proc = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
        timeout=300, stdin=subprocess.DEVNULL,
        env=wandb_env(tmp_path, WANDB_RUN_GROUP="sweep", WANDB_NAME="run_0001",
                      WANDB_JOB_TYPE="hpsearch", WANDB_SILENT="true"))
    assert proc.returncode == 0, proc.stderr
    (run,) = offline_runs(tmp_path / "wandb").values()
    assert (run.run.run_group, run.run.display_name, run.run.job_type) == (
        "sweep", "run_0001", "hpsearch")


def test_wandb_unwritable_directory_is_a_sink_error(tmp_path: Path) -> None:
    """A search directory that cannot hold wandb's files costs the record, in one line
    (checked before wandb starts: no process, no global state)."""
    blocker = tmp_path / "out"
    blocker.write_text("not a directory")
    sink = WandbSink(blocker)
    sink.open(SearchInfo("sweep", blocker, {"loss": "minimize"}, ("lr",)))
    with pytest.raises(SinkError, match=r"^wandb: cannot log run_0001: ") as error:
        sink.log(RunRecord(run_id="run_0001", config={"lr": 0.1}, status="finished"))
    assert "\n" not in str(error.value)
    assert blocker.read_text() == "not a directory"


def test_wandb_missing_extra_names_the_install(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(UsageError, match=r"pip install 'hpsearch\[wandb\]'"):
        WandbSink(tmp_path)


def test_wandb_offline_unless_the_environment_says(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    monkeypatch.delenv("WANDB_MODE", raising=False)
    assert WandbSink(tmp_path).mode == "offline"
    monkeypatch.setenv("WANDB_MODE", "online")
    assert WandbSink(tmp_path).mode == "online"
