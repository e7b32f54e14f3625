"""Which job of a packed launch runs which run: the launch's queue and the workers' claims.

With ``--runs_per_job N`` a launch is one job array of workers
(:mod:`hpsearch.backends.cluster.worker`), each running up to N runs of the launch at once. The
driver writes what they may run into ``<out_dir>/packs/<launch key>/`` on the shared filesystem
before it submits the array (the launch itself is journaled before that, as every launch)::

    packs/k3f9a1c2/
        queue.json          written once by the driver, read by every worker
        claims/<run_id>     one JSON line, written by the worker that took the run:
                                {"job": "4711_0", "host": "node3", "pid": 4242, "t": 1732350000.1}
        stops/<run_id>      "<seconds>\\n", written by the driver: stop the run (SIGTERM, then
                            SIGKILL after that many seconds); a worker never starts such a run

``queue.json`` holds the launch's runs in order and how a worker runs them::

    {"key": "k3f9a1c2", "runs_per_job": 3, "workers": 4, "timeout": null,
     "walltime_warning": 300, "scheduler_signals_runs": true,
     "gpu": {"allowed_load": 0.5, "allowed_memory": 0.5, "max_num_jobs_per_gpu": 3,
             "sim_startup_time": 60.0, "gpu_memory_per_run": null},
     "preload": {"preload": false, "no_preload": false},
     "runs": [{"run_id": "3f2a9c0d1b7e", "trial": 0, "run_dir": "/abs/runs/3f2a9c0d1b7e",
               "cwd": "/abs/sim", "argv": ["python3", "sim.py", "--lr=0.1"],
               "env": {"HPSEARCH_RUN_ID": "3f2a9c0d1b7e", ...}, "attempt": 1,
               "gpus": 1}, ...]}

(a run's ``argv`` as its launcher starts it: :mod:`hpsearch.runs.launchers`).

**A claim is won once.** A worker writes its claim whole to a file of its own, then links
it to ``claims/<run_id>`` (:func:`hpsearch.runs.files.link_whole`, the primitive of the driver's
lock): the link fails for every worker but the first, on NFS too. The claim names the job
that holds the run; ``hpsearch status`` shows it, and when the scheduler says that job
ended, a claimed run without an exit code is run again by the driver (a new launch, never
this one again: a worker starts a run only while its ``run.json`` names this launch).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpsearch.backends.gpus.admission import parse_mib
from hpsearch.runs.files import SIM_OUT_DIR, link_whole, read_run_record, write_atomic
from hpsearch.runs.launchers import launch_of
from hpsearch.runs.model import Resources, Run
from hpsearch.runs.preload import PreloadOptions

PACKS_DIR = "packs"
QUEUE_FILE = "queue.json"
CLAIMS_DIR = "claims"
STOPS_DIR = "stops"


@dataclass(frozen=True)
class Queue:
    """What ``queue.json`` says: the launch's runs, in order, and how to run them."""

    key: str
    runs_per_job: int
    workers: int
    timeout: float | None  # --timeout of each run
    walltime_warning: float  # seconds between the job's time-limit warning and its end
    #: the scheduler signals every process of a job (Slurm), not only the worker's group
    scheduler_signals_runs: bool
    gpu: Mapping[str, Any]  # the admission flags, by their names
    runs: tuple[Run, ...]
    #: which runs the worker forks from a zygote (:mod:`hpsearch.runs.preload`)
    preload: PreloadOptions = PreloadOptions()


def pack_dir(out_dir: Path, key: str) -> Path:
    """``<out_dir>/packs/<key>``: the folder of the packed launch ``key``."""
    return Path(out_dir) / PACKS_DIR / key


def write_queue(folder: Path, queue: Queue) -> None:
    """Create the pack's folders and its ``queue.json`` (whole, fsync'd: a worker on another
    host reads it)."""
    (folder / CLAIMS_DIR).mkdir(parents=True, exist_ok=True)
    (folder / STOPS_DIR).mkdir(exist_ok=True)
    text = json.dumps({
        "key": queue.key, "runs_per_job": queue.runs_per_job, "workers": queue.workers,
        "timeout": queue.timeout, "walltime_warning": queue.walltime_warning,
        "scheduler_signals_runs": queue.scheduler_signals_runs,
        "gpu": dict(queue.gpu), "preload": dataclasses.asdict(queue.preload),
        "runs": [{"run_id": r.run_id, "trial": r.trial, "run_dir": str(r.run_dir),
                  "cwd": str(r.cwd), "argv": launch_of(r).argv(), "env": dict(r.env),
                  "attempt": r.attempt, "gpus": r.resources.gpus} for r in queue.runs]})
    write_atomic(folder / QUEUE_FILE, text + "\n")
    with open(folder / QUEUE_FILE) as f:
        os.fsync(f.fileno())


def read_queue(folder: Path) -> Queue:
    """The pack's ``queue.json`` (OSError / ValueError when it is missing or torn); its
    runs need the GPUs their ``gpus`` names (one in a queue an older hpsearch wrote) and the
    GPU memory ``gpu_memory_per_run`` names (MiB, or a size such
    as ``4GiB`` in a queue an older hpsearch wrote; null: learned)."""
    with open(folder / QUEUE_FILE) as f:
        data = json.load(f)
    needs = Resources(gpu_memory_mib=parse_mib(data["gpu"].get("gpu_memory_per_run")))
    runs = tuple(Run(r["run_id"], int(r["trial"]), {}, tuple(r["argv"]), Path(r["cwd"]),
                     Path(r["run_dir"]), Path(r["run_dir"]) / SIM_OUT_DIR,
                     attempt=int(r["attempt"]), launch=data["key"], env=dict(r["env"]),
                     resources=dataclasses.replace(needs, gpus=int(r.get("gpus", 1))))
                 for r in data["runs"])
    return Queue(data["key"], int(data["runs_per_job"]), int(data["workers"]),
                 data["timeout"], float(data["walltime_warning"]),
                 bool(data["scheduler_signals_runs"]), data["gpu"], runs,
                 PreloadOptions(**{k: bool(v) for k, v in data.get("preload", {}).items()
                                   if k in ("preload", "no_preload")}))


def claim(folder: Path, run_id: str, job: str, host: str | None = None) -> bool:
    """Take ``run_id`` for ``job``: True for the one caller that wins it."""
    record = json.dumps({"job": job, "host": host or socket.gethostname(),
                         "pid": os.getpid(), "t": round(time.time(), 3)}) + "\n"
    draft = folder / CLAIMS_DIR / f".{run_id}.{secrets.token_hex(6)}"
    return link_whole(folder / CLAIMS_DIR / run_id, record, draft) is not None


def claimed(folder: Path) -> set[str]:
    """The run ids claimed so far (one directory listing)."""
    try:
        with os.scandir(folder / CLAIMS_DIR) as entries:
            return {e.name for e in entries if not e.name.startswith(".")}
    except FileNotFoundError:
        return set()


def read_claim(folder: Path, run_id: str) -> dict[str, Any] | None:
    """The claim on ``run_id`` (``{"job": ..., "host": ..., ...}``), None when there is none
    (a claim is never seen torn: it is linked into place whole)."""
    try:
        with open(folder / CLAIMS_DIR / run_id) as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("job"), str) else None


def request_stop(folder: Path, run_ids: Iterable[str], grace: float) -> None:
    """Ask the workers to stop these runs (and never to start them)."""
    for run_id in run_ids:
        with contextlib.suppress(OSError):
            write_atomic(folder / STOPS_DIR / run_id, f"{grace:g}\n")


def stop_requests(folder: Path) -> dict[str, float]:
    """``{run_id: grace seconds}`` of the stops asked for (one directory listing)."""
    found = {}
    try:
        with os.scandir(folder / STOPS_DIR) as entries:
            names = [e.name for e in entries if not e.name.startswith(".")]
    except FileNotFoundError:
        return {}
    for name in names:
        with contextlib.suppress(OSError, ValueError), open(folder / STOPS_DIR / name) as f:
            found[name] = float(f.read().strip() or 0)
    return found


def owns_run_dir(run: Run) -> bool:
    """Whether the run's directory still belongs to this launch: its ``run.json`` names it
    (the driver rewrites it for each launch it makes of the run)."""
    record = read_run_record(run.run_dir)
    return record is not None and record.get("launch") == run.launch
