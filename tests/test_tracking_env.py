"""Scripts that already log to W&B or MLflow group themselves under the search, unedited.

Every run's environment gets ``WANDB_RUN_GROUP``/``MLFLOW_EXPERIMENT_NAME`` = the search's name
(its directory's), ``WANDB_NAME``/``MLFLOW_RUN_NAME`` = the run id and ``WANDB_JOB_TYPE=hpsearch``,
unless the user's environment sets them already (the driver's, or a cluster job's setup lines).
The sims are the generic sim of ``conftest.py`` plus one line writing those variables to
``env.json`` in their output directory; the searches are real CLI runs, locally and in packed
cluster jobs of the LSF emulator and a job array of the local Slurm.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import PRELOADING, check_preloaded, preload_flags, run_hpsearch, write_search
from slurm_fixture import slurm_cluster  # noqa: F401  (fixture)
from test_lsf_emulator import lsf  # noqa: F401  (fixture: emulator on PATH, fresh state)

NAMES = ("WANDB_RUN_GROUP", "WANDB_NAME", "WANDB_JOB_TYPE", "MLFLOW_EXPERIMENT_NAME",
         "MLFLOW_RUN_NAME")

#: appended to the generic sim: the tracking variables it was given (absent: null)
ENV_DUMP = f'''
with open(os.path.join(out, "env.json"), "w") as f:
    json.dump({{name: os.environ.get(name) for name in {NAMES!r}}}, f)
'''


def env_search(root: Path):
    search = write_search(root, {"x": [1.0, 2.0, 3.0]})
    with open(search.sim_dir / "sim.py", "a") as f:
        f.write(ENV_DUMP)
    return search


def seen(search) -> dict[str, dict[str, str | None]]:
    """Each run's tracking variables, by run id (every run of the search ran)."""
    rows = search.results()
    assert len(rows) == 3 and {r["status"] for r in rows} == {"finished"}, rows
    return {r["run_id"]: json.loads((Path(r["run_dir"]) / "out" / "env.json").read_text())
            for r in rows}


def expected(search, run_id: str, **given: str) -> dict[str, str]:
    name = search.out_dir.name
    return {"WANDB_RUN_GROUP": name, "WANDB_NAME": run_id, "WANDB_JOB_TYPE": "hpsearch",
            "MLFLOW_EXPERIMENT_NAME": name, "MLFLOW_RUN_NAME": run_id, **given}


@PRELOADING
def test_local_runs_are_named_and_grouped_for_wandb_and_mlflow(tmp_path, monkeypatch, preload):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    search = env_search(tmp_path)
    code, out, err = run_hpsearch(search.args("--num_jobs=2", *preload_flags(preload)), tmp_path)
    assert code == 0, err
    check_preloaded(search.out_dir, preload)
    for run_id, env in seen(search).items():
        assert env == expected(search, run_id)


@PRELOADING
def test_what_the_users_environment_sets_is_kept(tmp_path, monkeypatch, preload):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_RUN_GROUP", "my group")
    monkeypatch.setenv("MLFLOW_RUN_NAME", "")  # set empty is set: kept empty
    search = env_search(tmp_path)
    code, out, err = run_hpsearch(search.args("--num_jobs=2", *preload_flags(preload)), tmp_path)
    assert code == 0, err
    check_preloaded(search.out_dir, preload)
    for run_id, env in seen(search).items():
        assert env == expected(search, run_id, WANDB_RUN_GROUP="my group", MLFLOW_RUN_NAME="")


@pytest.mark.parametrize("runs_per_job", ["1", "2"])  # a job array's script; packed workers
def test_cluster_runs_too_and_a_job_setup_line_wins(tmp_path, lsf, monkeypatch,  # noqa: F811
                                                    runs_per_job):
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    search = env_search(tmp_path)
    code, out, err = run_hpsearch(search.args(
        "--run_cluster", "--scheduler=lsf", f"--runs_per_job={runs_per_job}",
        "--job_setup=export WANDB_JOB_TYPE=train"), tmp_path, timeout=120)
    assert code == 0, err
    for run_id, env in seen(search).items():
        assert env == expected(search, run_id, WANDB_JOB_TYPE="train")


def test_slurm_job_array_runs_too(tmp_path, monkeypatch, slurm_cluster):  # noqa: F811
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    search = env_search(tmp_path)
    code, out, err = run_hpsearch(search.args(
        "--run_cluster", "--scheduler=slurm", "--slurm_mem=50M", "--slurm_gres="), tmp_path,
        timeout=300)
    assert code == 0, err
    for run_id, env in seen(search).items():
        assert env == expected(search, run_id)
