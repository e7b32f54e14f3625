"""``--log_to mlflow``: each ended run as an MLflow run, one experiment per search.

**Where**: ``MLFLOW_TRACKING_URI`` when it is set (a server ``http://host:5000``, a database
``sqlite:///path/mlflow.db``, ``postgresql://...``), else the SQLite database
``<search directory>/mlflow.db`` (artifacts, of which hpsearch logs none, under
``<search directory>/mlflow-artifacts``). SQLite and not MLflow's file store (``./mlruns``):
MLflow 3 keeps the file store in maintenance mode and refuses to open it unless
``MLFLOW_ALLOW_FILE_STORE=true`` is set, and that variable would reach every run's environment;
a SQLite store needs SQLAlchemy and alembic, which the full ``mlflow`` package brings (the
extra ``hpsearch[mlflow]`` installs it; ``mlflow-skinny`` alone cannot write a database) --
and the full package is what ``mlflow ui --backend-store-uri sqlite:///.../mlflow.db`` needs
to show it anyway.

**What**: the experiment is named after the search (its directory's name); a run is named
after the run id, its parameters are the configuration, its metrics the curve's values by
step and the summary's final values (at the curve's last step, unless the curve ends with
that value already), its status ``FINISHED`` (finished), ``FAILED`` (failed) or ``KILLED``
(pruned, preempted, cancelled), with ours and its reason as the tags ``hpsearch.status`` and
``hpsearch.reason`` beside the record's other tags (``hpsearch.trial``, ...).

**Once**: a run is found again by its tags ``hpsearch.run_id`` and ``hpsearch.out_dir``;
``hpsearch.record`` holds a digest of what was logged. Logging a record again leaves one run:
the same record, already complete, is left as it is; anything else (a run half written when
the driver died, or an earlier verdict of a run retried since) is deleted and written anew --
MLflow's parameters cannot be changed once logged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import asdict
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from mlflow.entities import Metric, Param  # a missing extra: found here, as the sink is made
from mlflow.tracking import MlflowClient

from hpsearch.tracking.record import RunRecord, SearchInfo, SinkError

#: the SQLite database of a search without MLFLOW_TRACKING_URI
DEFAULT_DB = "mlflow.db"
#: our status -> MLflow's
STATUS = {"finished": "FINISHED", "failed": "FAILED"}
#: seconds to wait for a tracking server's port before saying it is unreachable
CONNECT_TIMEOUT = 5.0
#: MLflow's limits (mlflow.utils.validation): per log_batch call, and on names and values
MAX_METRICS, MAX_PARAMS_TAGS = 1000, 100
MAX_KEY, MAX_PARAM, MAX_TAG = 250, 6000, 8000
_BAD_KEY = re.compile(r"[^\w.\- :/]")


def store_uri(out_dir: Path) -> str:
    """Where the search in ``out_dir`` logs: ``MLFLOW_TRACKING_URI``, else its SQLite file."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{out_dir / DEFAULT_DB}"


def _key(name: str) -> str:
    """A parameter or metric name MLflow accepts (other characters as ``_``)."""
    key = _BAD_KEY.sub("_", name)[:MAX_KEY].replace("//", "/").strip("/")
    return key.replace("..", "__") or "_"


def _text(value: Any) -> str:
    """A parameter's value as text (a string as it is, anything else as JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def digest(record: RunRecord) -> str:
    """What identifies a record's content (the same record logged again matches)."""
    data = json.dumps(asdict(record), sort_keys=True, default=str).encode()
    return hashlib.sha256(data).hexdigest()[:16]


def _ms(seconds: float | None) -> int:
    return int((seconds if seconds is not None else time.time()) * 1000)


def metrics_of(record: RunRecord) -> list[Metric]:
    """The curve's values by step, then each final value at the last step unless the curve
    ended with it there."""
    metrics, last = [], {}
    end = _ms(record.ended)
    for step, values in record.curve:
        for name, value in values.items():
            metrics.append(Metric(_key(name), float(value), end, step))
            last[name] = (step, value)
    final_step = record.curve[-1][0] if record.curve else 0
    for name, value in record.metrics.items():
        if last.get(name) != (final_step, value):
            metrics.append(Metric(_key(name), float(value), end, final_step))
    return metrics


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class MlflowSink:
    """Logs a search's ended runs to MLflow (see the module docstring)."""

    name = "mlflow"

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.uri = store_uri(out_dir)
        self.default_store = not os.environ.get("MLFLOW_TRACKING_URI")
        if urlsplit(self.uri).scheme not in ("http", "https", "databricks", "file", "") \
                and find_spec("sqlalchemy") is None:
            raise ModuleNotFoundError("a database store needs SQLAlchemy", name="sqlalchemy")
        self._client: MlflowClient | None = None
        self._experiment = ""

    # -- Sink -----------------------------------------------------------------------
    def open(self, search: SearchInfo) -> None:
        """Reach the store and find (or create) the search's experiment."""
        with self._failing("open"):
            self._reach()
            client = MlflowClient(tracking_uri=self.uri)
            found = client.get_experiment_by_name(search.name)
            if found is None:
                location = (self.out_dir / "mlflow-artifacts").as_uri() \
                    if self.default_store else None
                self._experiment = client.create_experiment(search.name, location)
            else:
                self._experiment = found.experiment_id
            self._client = client

    def log(self, record: RunRecord) -> None:
        """Write ``record`` as one MLflow run, replacing any other of the same run id."""
        assert self._client is not None, "open() first"
        client, mark = self._client, digest(record)
        with self._failing(f"log run {record.run_id}"):
            self._reach()
            earlier = self._runs_of(record.run_id)
            if any(r.data.tags.get("hpsearch.record") == mark and r.info.status != "RUNNING"
                   for r in earlier):
                return  # logged already, whole
            for run in earlier:
                client.delete_run(run.info.run_id)
            self._write(record, mark)

    def close(self) -> None:
        self._client = None

    # -- helpers ----------------------------------------------------------------------
    def _write(self, record: RunRecord, mark: str) -> None:
        """A new run holding ``record``; its status is set last (a run still ``RUNNING`` was
        cut short while it was written)."""
        assert self._client is not None
        client = self._client
        tags = {"hpsearch.run_id": record.run_id, "hpsearch.out_dir": str(self.out_dir),
                "hpsearch.status": record.status, "hpsearch.reason": record.reason,
                **{f"hpsearch.{k}": v for k, v in record.tags.items()}}
        run = client.create_run(self._experiment, start_time=_ms(record.started or record.ended),
                                tags={k: v[:MAX_TAG] for k, v in tags.items()},
                                run_name=record.run_id)
        run_id = run.info.run_id
        params = [Param(_key(k), _text(v)[:MAX_PARAM]) for k, v in record.config.items()]
        for chunk in _chunks(params, MAX_PARAMS_TAGS):
            client.log_batch(run_id, params=chunk, synchronous=True)
        for chunk in _chunks(metrics_of(record), MAX_METRICS):
            client.log_batch(run_id, metrics=chunk, synchronous=True)
        client.set_tag(run_id, "hpsearch.record", mark, synchronous=True)
        client.set_terminated(run_id, STATUS.get(record.status, "KILLED"),
                              end_time=_ms(record.ended))

    def _runs_of(self, run_id: str) -> list[Any]:
        """This search's MLflow runs of ``run_id`` (deleted ones aside)."""
        assert self._client is not None
        found = self._client.search_runs(
            [self._experiment], filter_string=f"tags.`hpsearch.run_id` = '{run_id}'",
            max_results=100)
        return [r for r in found if r.data.tags.get("hpsearch.out_dir") == str(self.out_dir)]

    def _reach(self) -> None:
        """For a tracking server: SinkError at once when nothing answers on its port
        (MLflow's own client would retry for minutes)."""
        parts = urlsplit(self.uri)
        if parts.scheme not in ("http", "https"):
            return
        port = parts.port or (443 if parts.scheme == "https" else 80)
        try:
            socket.create_connection((parts.hostname or "localhost", port),
                                     CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise SinkError(f"cannot reach the MLflow tracking server {self.uri} "
                            f"({exc.strerror or exc})") from None

    @contextlib.contextmanager
    def _failing(self, what: str) -> Iterator[None]:
        """Whatever MLflow raises inside, as one :class:`SinkError` line."""
        try:
            yield
        except SinkError:
            raise
        except Exception as exc:  # noqa: BLE001  (MLflow, SQLAlchemy, requests, ...)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SinkError(f"mlflow ({self.uri}): cannot {what}: {first[:300]}") from None


# MLflow says "Creating initial MLflow database tables..." on our stderr when it makes a store
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)
