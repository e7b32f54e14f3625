"""TensorBoard and W&B through the driver and ``export``, read back with their own readers.

The sinks' own tests hand them records directly; here a real search runs with ``--log_to
tensorboard --log_to wandb`` and its sim calls ``wandb.init(mode="offline")`` itself, so three
paths are checked end to end: the driver's sinks (one TensorBoard run and one W&B run per run,
their curves by step), the zero-change path (the sim's own W&B run lands in the search's group,
named after its run, with no edit), and ``hpsearch export --format tensorboard`` of the search
once it ended (the same runs again, once each).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import hpsearch_cmd, hpsearch_env
from wandb_files import offline_runs

from hpsearch.engine.journal import replay

pytest.importorskip("tensorboard")
pytest.importorskip("wandb")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

SIM = '''
import os, sys
import wandb
from hpsearch import report
args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
x, out = float(args["x"]), args["out_dir"]
os.makedirs(out, exist_ok=True)
own = wandb.init(mode="offline", dir=out, config={"x": x})
for epoch in range(1, 4):
    report(step=epoch, loss=x + 1 / epoch)
    own.log({"loss": x + 1 / epoch}, step=epoch)
own.finish()
with open(os.path.join(out, "perf.txt"), "w") as f:
    f.write(f"loss {x + 1 / 3}\\nfinished 1\\n")
'''

SEARCH = '''
script: sim.py
summary_file: perf.txt
metrics: [loss]
direction: minimize
parameters:
  x: [0.1, 0.5]
'''


def run(root: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in hpsearch_env().items() if not k.startswith(("WANDB_", "MLFLOW_"))}
    env["WANDB_SILENT"] = "true"
    return subprocess.run(hpsearch_cmd(argv), cwd=root, env=env, capture_output=True,
                          text=True, timeout=600, stdin=subprocess.DEVNULL)


def tensorboard_curves(log_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Each run's ``loss`` by step, as TensorBoard's own reader sees the run's folder."""
    curves = {}
    for folder in sorted(p for p in log_dir.iterdir() if p.is_dir()):
        acc = EventAccumulator(str(folder))
        acc.Reload()
        curves[folder.name] = [(e.step, round(e.value, 6)) for e in acc.Scalars("loss")]
    return curves


def test_log_to_tensorboard_and_wandb_through_the_driver_and_export(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "sim.py").write_text(SIM)
    (tmp_path / "search.yaml").write_text(SEARCH)
    out = tmp_path / "sweep"
    done = run(tmp_path, ["--search_file=search.yaml", "--run_cwd=proj", f"--out_dir={out}",
                          "--visible_gpus=-1", "--num_jobs=2", "--log_to", "tensorboard",
                          "--log_to", "wandb"])
    assert done.returncode == 0, done.stderr
    states = replay(out / "journal.jsonl").runs
    x_of = {run_id: state.config["x"] for run_id, state in states.items()}
    assert len(x_of) == 2

    # the driver's TensorBoard sink: one folder per run, the curve by step
    expected = {run_id: [(step, round(x + 1 / step, 6)) for step in (1, 2, 3)]
                for run_id, x in x_of.items()}
    assert tensorboard_curves(out / "tensorboard") == expected

    # the driver's W&B sink: one offline run per run, grouped under the search
    logged = offline_runs(out / "wandb")
    assert sorted(r.run.display_name for r in logged.values()) == sorted(x_of)
    for record in logged.values():
        assert record.run.run_group == "sweep"
        assert record.config["x"] == x_of[record.run.display_name]
        assert [step for step, _ in record.history] == [1, 2, 3]

    # the zero-change path: each sim's own wandb.init() named and grouped by hpsearch
    for run_id in x_of:
        (own,) = offline_runs(out / "runs" / run_id / "out" / "wandb").values()
        assert (own.run.run_group, own.run.display_name, own.run.job_type) == (
            "sweep", run_id, "hpsearch")

    # export of the ended search writes the same TensorBoard runs again, once each
    notes = (out / "tracking" / "tensorboard.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["run"] for line in notes) == sorted(x_of)
    for folder in (out / "tensorboard").iterdir():
        if folder.is_dir():
            for event_file in folder.iterdir():
                event_file.unlink()
    exported = run(tmp_path, ["export", str(out), "--format", "tensorboard"])
    assert exported.returncode == 0, exported.stderr
    assert tensorboard_curves(out / "tensorboard") == expected
