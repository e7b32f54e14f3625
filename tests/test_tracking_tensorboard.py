"""The TensorBoard sink, read back with TensorBoard's own readers.

Records are handed to the sink directly (no driver): the event files are read with
``EventAccumulator`` (scalars by step per run) and served by TensorBoard's own HParams
plugin, whose session groups are what its HParams dashboard compares.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import hparams_plugin
from tensorboard.plugins.hparams import metadata as hparams_metadata
from werkzeug.test import Client

from hpsearch.errors import UsageError
from hpsearch.tracking.record import RunRecord, SearchInfo, SinkError
from hpsearch.tracking.tensorboard import TensorBoardSink

SEARCH = SearchInfo(name="sweep", out_dir=Path("unused"), objectives={"loss": "minimize"},
                    parameters=("lr", "opt"))

FINISHED = RunRecord(
    run_id="run_0001", config={"lr": 0.1, "opt": "adam", "layers": [64, 64]},
    status="finished", metrics={"loss": 0.25, "acc": 0.9},
    curve=((1, {"loss": 0.8}), (2, {"loss": 0.5}), (3, {"loss": 0.3})),
    tags={"search": "sweep", "trial": "1", "backend": "local"}, started=1000.0, ended=1100.0)
FAILED = RunRecord(run_id="run_0002", config={"lr": 0.01, "opt": "sgd", "layers": None},
                   status="failed", reason="exit code 1", started=1000.0, ended=1010.0)
PRUNED = RunRecord(run_id="run_0003", config={"lr": 0.5, "opt": "sgd", "layers": [8]},
                   status="pruned", reason="pruned at step 1", curve=((1, {"loss": 2.0}),),
                   started=1000.0, ended=1005.0)


def logged(tmp_path: Path, *records: RunRecord) -> Path:
    """The log directory after ``records`` were logged by one sink."""
    sink = TensorBoardSink(tmp_path)
    sink.open(SEARCH)
    for record in records:
        sink.log(record)
    sink.close()
    return tmp_path / "tensorboard"


def accumulator(directory: Path) -> EventAccumulator:
    acc = EventAccumulator(str(directory))
    acc.Reload()
    return acc


def scalars(directory: Path, tag: str) -> list[tuple[int, float]]:
    return [(event.step, pytest.approx(event.value)) for event in
            accumulator(directory).Scalars(tag)]


def hparams_api(logdir: Path, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """One request to TensorBoard's HParams plugin over ``logdir``, as its dashboard asks."""
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(str(logdir))
    mux.Reload()
    context = base_plugin.TBContext(
        logdir=str(logdir), multiplexer=mux,
        data_provider=data_provider.MultiplexerDataProvider(mux, str(logdir)))
    app = hparams_plugin.HParamsPlugin(context).get_plugin_apps()[route]
    response = Client(app).post(route, data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.loads(response.get_data(as_text=True))


def test_tensorboard_scalars_by_step_per_run(tmp_path: Path) -> None:
    """Each run is a directory of its own; its curve is a scalar per step and the final
    metrics sit at the last step (a final value replaces the curve's value there)."""
    logdir = logged(tmp_path, FINISHED, FAILED, PRUNED)
    assert sorted(path.name for path in logdir.iterdir() if path.is_dir()) == [
        "run_0001", "run_0002", "run_0003"]
    assert scalars(logdir / "run_0001", "loss") == [(1, 0.8), (2, 0.5), (3, 0.25)]
    assert scalars(logdir / "run_0001", "acc") == [(3, 0.9)]
    assert scalars(logdir / "run_0003", "loss") == [(1, 2.0)]
    assert accumulator(logdir / "run_0002").Tags()["scalars"] == []
    text = accumulator(logdir / "run_0002").Tensors("hpsearch/run")[0].tensor_proto
    assert text.string_val[0].decode() == "status: failed  \nreason: exit code 1"


def test_tensorboard_hparams_dashboard_compares_runs(tmp_path: Path) -> None:
    """TensorBoard's own HParams plugin finds the experiment (parameters, objectives) and
    one session group per run: its configuration, status and final objective."""
    logdir = logged(tmp_path, FINISHED, FAILED, PRUNED)
    content = accumulator(logdir).PluginTagToContent("hparams")
    experiment = hparams_metadata.parse_experiment_plugin_data(
        content[hparams_metadata.EXPERIMENT_TAG])
    assert [info.name for info in experiment.hparam_infos] == ["lr", "opt"]
    assert [(m.name.tag, m.description) for m in experiment.metric_infos] == [
        ("loss", "minimize")]

    groups = hparams_api(logdir, "/session_groups", {
        "startIndex": 0, "sliceSize": 10, "colParams": [],
        "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE",
                            "STATUS_RUNNING"]})["sessionGroups"]
    by_name = {group["name"]: group for group in groups}
    assert sorted(by_name) == ["run_0001", "run_0002", "run_0003"]
    first = by_name["run_0001"]
    assert first["hparams"] == {"lr": 0.1, "opt": "adam", "layers": "[64, 64]"}
    assert [(v["name"]["tag"], v["value"], v["trainingStep"]) for v in first["metricValues"]] \
        == [("loss", pytest.approx(0.25), 3)]
    assert by_name["run_0002"]["hparams"]["layers"] == "null"
    statuses = {name: group["sessions"][0]["status"] for name, group in by_name.items()}
    assert statuses == {"run_0001": "STATUS_SUCCESS", "run_0002": "STATUS_FAILURE",
                        "run_0003": "STATUS_SUCCESS"}
    assert first["sessions"][0]["startTimeSecs"] == 1000.0
    assert first["sessions"][0]["endTimeSecs"] == 1100.0


def test_tensorboard_logging_again_leaves_one_run(tmp_path: Path) -> None:
    """A run logged again (after a crash between writing and noting it) and a search opened
    again replace their event file: one file per directory, one value per step."""
    logged(tmp_path, FINISHED, FAILED)
    logdir = logged(tmp_path, FINISHED)
    for directory in (logdir, logdir / "run_0001", logdir / "run_0002"):
        assert [path.name for path in directory.iterdir() if path.is_file()] == [
            "events.out.tfevents.hpsearch"]
    assert scalars(logdir / "run_0001", "loss") == [(1, 0.8), (2, 0.5), (3, 0.25)]
    groups = hparams_api(logdir, "/session_groups", {
        "startIndex": 0, "sliceSize": 10, "colParams": [],
        "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE"]})["sessionGroups"]
    assert sorted(group["name"] for group in groups) == ["run_0001", "run_0002"]
    assert all(len(group["sessions"]) == 1 for group in groups)


def test_tensorboard_bad_values_cost_nothing(tmp_path: Path) -> None:
    """A NaN or infinite final metric is logged as such; a configuration value the HParams
    plugin cannot hold (a dict) becomes its JSON text."""
    record = RunRecord(run_id="run_0004", config={"lr": float("nan"), "opt": {"name": "sgd"}},
                       status="finished", metrics={"loss": float("nan"), "acc": float("inf")})
    logdir = logged(tmp_path, record)
    [(step, loss)] = [(e.step, e.value) for e in accumulator(logdir / "run_0004").Scalars("loss")]
    assert step == 0 and math.isnan(loss)
    assert scalars(logdir / "run_0004", "acc") == [(0, float("inf"))]
    content = accumulator(logdir / "run_0004").PluginTagToContent("hparams")
    start = hparams_metadata.parse_session_start_info_plugin_data(
        content[hparams_metadata.SESSION_START_INFO_TAG])
    assert start.hparams["opt"].string_value == '{"name": "sgd"}'
    assert math.isnan(start.hparams["lr"].number_value)


def test_tensorboard_unwritable_directory_is_a_sink_error(tmp_path: Path) -> None:
    """A directory that cannot be written costs the record, said in one line."""
    blocker = tmp_path / "tensorboard"
    blocker.write_text("not a directory")
    sink = TensorBoardSink(tmp_path)
    with pytest.raises(SinkError, match=r"^tensorboard: cannot write .*tensorboard") as error:
        sink.open(SEARCH)
    assert "\n" not in str(error.value)
    assert blocker.read_text() == "not a directory"


def test_tensorboard_missing_extra_names_the_install(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorboard", None)
    with pytest.raises(UsageError, match=r"pip install 'hpsearch\[tensorboard\]'"):
        TensorBoardSink(tmp_path)
