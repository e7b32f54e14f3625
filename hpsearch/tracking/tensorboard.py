"""The TensorBoard sink: one event directory per run under ``<search dir>/tensorboard/``.

``tensorboard --logdir <search dir>/tensorboard`` then shows each run's intermediate values
as scalars by step, and its HParams dashboard compares the runs: the search's experiment
(its parameters and objectives) sits in the log directory itself, each run's directory holds
the session start (its configuration) and end (its status) of the HParams plugin.

Every summary is built from the ``tensorboard`` package's own protocol buffers and plugin
metadata (scalars as simple values, the form every reader takes: TensorBoard,
``EventAccumulator``, tbparse) and written with its own record writer, so no TensorFlow or
torch is needed. Each directory holds exactly one
event file of a fixed name, written beside it under a name TensorBoard ignores and renamed
over it: logging a run again (after a crash between writing and noting it) replaces its
events, it never adds a second copy.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from hpsearch.errors import UsageError
from hpsearch.tracking.record import RunRecord, SearchInfo, SinkError

#: The one event file of each directory ("tfevents" in a name is what TensorBoard reads).
EVENT_FILE = "events.out.tfevents.hpsearch"
#: Where a process writes the event file before renaming it over :data:`EVENT_FILE`: without
#: "tfevents" in its name TensorBoard never reads a half-written one (one left by a killed
#: process is never read, and is replaced when that process id writes the run again).
PARTIAL_FILE = ".hpsearch-events.{pid}.partial"
#: The text summary that carries a run's status, reason and tags.
RUN_TEXT_TAG = "hpsearch/run"


class TensorBoardSink:
    """Writes each ended run as TensorBoard events under ``<out_dir>/tensorboard/<run_id>/``."""

    name = "tensorboard"

    def __init__(self, out_dir: Path) -> None:
        _require_tensorboard()
        self.root = Path(out_dir) / "tensorboard"

    def open(self, search: SearchInfo) -> None:
        """Write the search's HParams experiment into the log directory itself, replacing
        the one a previous open wrote: its parameters (marked as differing between runs,
        which makes them the dashboard's columns) and its objectives (the direction as
        their description)."""
        from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

        experiment = api_pb2.Experiment(
            hparam_infos=[api_pb2.HParamInfo(name=name, differs=True)
                          for name in search.parameters],
            metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=metric),
                                             description=direction)
                          for metric, direction in search.objectives.items()])
        _write_events(self.root, [_event(summary=_hparams_summary(
            metadata.EXPERIMENT_TAG, plugin_data_pb2.HParamsPluginData(experiment=experiment)))])

    def log(self, record: RunRecord) -> None:
        """Write one run's events (scalars by step, final metrics, HParams session, status
        text), replacing what an earlier call wrote for the same run."""
        _write_events(self.root / record.run_id, list(_run_events(record)))

    def close(self) -> None:
        """Nothing stays open between calls."""


def _require_tensorboard() -> None:
    """A missing extra: one line that names the install command."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise UsageError(
            "--log_to tensorboard needs the tensorboard package: "
            "pip install 'hpsearch[tensorboard]'") from None


def _run_events(record: RunRecord) -> Iterator[Any]:
    """The events of one run, in step order: session start, the scalars, the status text
    and the session end."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import summary_v2 as hp
    from tensorboard.plugins.text.summary_v2 import text_pb

    wall = _wall_time(record)
    started = record.started if record.started is not None else wall
    yield _event(wall, summary=hp.hparams_pb(
        _hparams(record.config), trial_id=record.run_id, start_time_secs=started))
    points = _points(record)
    for step, values in sorted(points.items()):
        for metric, value in values.items():
            yield _event(wall, step, summary=summary_pb2.Summary(
                value=[summary_pb2.Summary.Value(tag=metric, simple_value=value)]))
    last = max(points, default=0)
    yield _event(wall, last, summary=text_pb(RUN_TEXT_TAG, _run_text(record)))
    yield _event(wall, last, summary=_session_end(record.status, wall))


def _points(record: RunRecord) -> dict[int, dict[str, float]]:
    """``{step: {metric: value}}``: the curve, then the final metrics at its last step (a
    final value replaces the curve's value of the same metric there, so every tag has one
    value per step and its last one is the final metric the HParams dashboard shows)."""
    points = {step: dict(values) for step, values in record.curve}
    if record.metrics:
        points.setdefault(max(points, default=0), {}).update(record.metrics)
    return points


def _hparams(config: Mapping[str, Any]) -> dict[str, bool | float | str]:
    """The configuration as the HParams plugin takes it: numbers, booleans and text as
    they are, anything else (a list, None, a dict) as its JSON text."""
    return {key: value if isinstance(value, (bool, int, float, str))
            else json.dumps(value, sort_keys=True, default=str)
            for key, value in config.items()}


def _run_text(record: RunRecord) -> str:
    """The status, the reason and the tags, one Markdown line each."""
    lines = [f"status: {record.status}"]
    if record.reason:
        lines.append(f"reason: {record.reason}")
    lines += [f"{key}: {value}" for key, value in record.tags.items()]
    return "  \n".join(lines)


def _session_end(status: str, wall: float) -> Any:
    """The HParams plugin's session end: finished and pruned runs ended as they should
    (success), failed ones failed, any other status (preempted, ...) is unknown."""
    from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2

    code = {"finished": api_pb2.STATUS_SUCCESS, "pruned": api_pb2.STATUS_SUCCESS,
            "failed": api_pb2.STATUS_FAILURE}.get(status, api_pb2.STATUS_UNKNOWN)
    return _hparams_summary(metadata.SESSION_END_INFO_TAG, plugin_data_pb2.HParamsPluginData(
        session_end_info=plugin_data_pb2.SessionEndInfo(status=code, end_time_secs=wall)))


def _hparams_summary(tag: str, data: Any) -> Any:
    """A summary holding the HParams plugin's ``data`` under ``tag``, as the plugin's own
    summary functions build it (they need TensorFlow for the experiment and session end)."""
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(tag=tag, tensor=metadata.NULL_TENSOR,
                      metadata=metadata.create_summary_metadata(data))
    return summary


def _wall_time(record: RunRecord) -> float:
    """The events' time: when the run ended (else started, else now)."""
    for known in (record.ended, record.started):
        if known is not None:
            return known
    return time.time()


def _event(wall: float = 0.0, step: int = 0, **fields: Any) -> Any:
    """An event protocol buffer at ``wall`` time and ``step``."""
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=wall, step=step, **fields)


def _write_events(directory: Path, events: list[Any]) -> None:
    """``directory``'s one event file, holding ``events`` after the file-version event:
    written under :data:`PARTIAL_FILE`, then renamed over :data:`EVENT_FILE`."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter

    head = _event(file_version="brain.Event:2", source_metadata=event_pb2.SourceMetadata(
        writer="hpsearch"))
    partial = directory / PARTIAL_FILE.format(pid=os.getpid())
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as file:
            writer = RecordWriter(file)
            for event in [head, *events]:
                writer.write(event.SerializeToString())
            file.flush()
            os.fsync(file.fileno())
        os.replace(partial, directory / EVENT_FILE)
    except OSError as exc:
        raise SinkError(f"tensorboard: cannot write {directory}: {exc.strerror or exc}") from exc
