"""A worker's report on a point, checked against the search and written as a run's files.

A report is one of (the body of ``PUT /requests/<id>/points/<point id>``)::

    {"loss": 0.231}                                  # the objective's value
    {"metrics": {"val_loss": 0.231, "val_acc": 0.93, "acc_per_task": [0.9, 0.95]}}
    {"failure": "CUDA out of memory on node 7"}      # the point failed

``loss`` fits a search whose only metric is its objective; a search with more metrics (or
objectives) takes them all in ``metrics``. Numbers must be finite; a failure message longer
than :data:`~hpsearch.service.limits.MAX_FAILURE_CHARS` is cut. What is accepted is
written the way a sim and the job wrapper would have written it (:mod:`hpsearch.runs.files`):
the summary file (``<metric> <value>`` lines and ``finished 1``) and ``exit_code`` 0, or
the message as ``stderr.log`` and ``exit_code`` 1 -- so the driver judges it with the one
verdict (:func:`hpsearch.runs.summary.judge`), and a restarted service finds it in the run
directory even if the driver never saw it. The summary file is always inside the run's
directory: a service takes no search whose ``summary_file`` leads out
(:func:`hpsearch.spec.gridmodule.check_summary_filename`).
"""

from __future__ import annotations

import time
from typing import Any

from hpsearch.backends.base import Ended
from hpsearch.runs.files import (
    STDERR_FILE,
    ExitRecord,
    StartRecord,
    read_exit,
    read_start,
    tail_lines,
    write_exit,
    write_small,
)
from hpsearch.runs.model import Run
from hpsearch.runs.summary import SummaryFormat
from hpsearch.service.api_error import ApiError
from hpsearch.service.limits import cut_failure
from hpsearch.service.points import Report

#: the reason of a failure a worker reported, before its message
REPORTED = "reported: "


def check_report(body: dict[str, Any], fmt: SummaryFormat, worker: str) -> Report:
    """The report in ``body`` (already of the right shape: exactly one of ``loss``,
    ``metrics``, ``failure``), checked against the search's metrics (ApiError 400)."""
    names = [k for k in fmt.keywords if k != "finished"]
    if body.get("failure") is not None:
        return Report(None, cut_failure(str(body["failure"])), worker, None)
    if body.get("loss") is not None:
        if names != fmt.objectives[:1] or len(fmt.objectives) > 1:
            raise ApiError(400, f"this search's metrics are {', '.join(names)}: report them "
                           'all as {"metrics": {...}}, not one loss')
        metrics = {names[0]: body["loss"]}
    else:
        metrics = dict(body["metrics"])
        unknown = [k for k in metrics if k not in names]
        if unknown:
            raise ApiError(400, f"unknown metric {', '.join(map(repr, unknown))}; this "
                           f"search's metrics are {', '.join(names)}")
        missing = [k for k in names if k not in metrics]
        if missing:
            raise ApiError(400, f"the report lacks metric {', '.join(map(repr, missing))}; "
                           f"this search's metrics are {', '.join(names)}")
        for objective in fmt.objectives:
            if isinstance(metrics[objective], list):
                raise ApiError(400, f"objective {objective!r} must be one number, not a list")
    return Report(metrics, None, worker, float(metrics[fmt.objectives[0]]))


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(map(repr, value)) + "]"
    return repr(value)


def write_report(run: Run, report: Report, fmt: SummaryFormat, start: StartRecord) -> Ended:
    """Write ``report`` as the run's files: the summary (or ``stderr.log``), then
    ``exit_code``. Returns the run's end as :func:`ended_of` reads it back (``start``: the
    run's ``started_at`` as it was written)."""
    said = None
    if report.metrics is not None:
        summary = run.sim_out_dir / fmt.filename  # inside: check_summary_filename(fmt.filename)
        summary.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{k} {_text(v)}\n" for k, v in report.metrics.items())
        write_small(summary, lines + "finished 1\n")
    else:
        said = " ".join((report.failure or "").split()) or "failed"
        write_small(run.run_dir / STDERR_FILE, said + "\n")
    code = 0 if said is None else 1
    write_exit(run.run_dir, code, run.launch)
    return _end(run.run_id, ExitRecord(code, run.launch, time.time(), start.started_at),
                start, said)


def ended_of(run: Run) -> Ended | None:
    """The run's end as its files tell (None before a report was written)."""
    start = read_start(run.run_dir)
    record = read_exit(run.run_dir, run.launch, start)
    if record is None:
        return None
    said = tail_lines(run.run_dir / STDERR_FILE, 1) if record.exit_code else []
    return _end(run.run_id, record, start, said[0] if said else None)


def _end(run_id: str, record: ExitRecord, start: StartRecord | None, said: str | None
         ) -> Ended:
    extra = {"job_id": start.job} if start is not None and start.job else {}
    if record.exit_code == 0:
        return Ended.recorded(run_id, record, extra)
    return Ended(run_id, None, REPORTED + (said or "failed"), extra=extra,
                 wall_time=record.wall_time)
