"""The packed worker: one cluster job that runs up to N runs of a launch at once.

With ``--runs_per_job N``, each job of a launch's array ends its script with::

    exec /path/to/python -m hpsearch.worker /abs/out/packs/k3f9a1c2 4711_0 node3

(the pack folder, the job's own id -- ``4711_0`` on Slurm, ``4711[1]`` on LSF -- and its host). The
worker takes runs of the pack's queue (:mod:`hpsearch.backends.cluster.claims`) one claim at a
time, in queue order, as long as its GPUs admit another, and runs each through the one job wrapper
exactly as the local backends do (:class:`~hpsearch.backends.gpus.backend.GpuBackend` or
:class:`~hpsearch.backends.local.LocalBackend` inside the job, ``started_at`` naming the cluster
job), so a packed run's directory looks like any other run's. It never writes the journal: the
driver learns everything from the run directories and the claims. A function objective's runs
(a script's, with ``--preload``) are forked from a zygote of the worker's that imported their
code once (:mod:`hpsearch.runs.preload`), so a worker pays the import once, not once per run.

**GPUs.** The job's GPUs are its ``CUDA_VISIBLE_DEVICES`` (what the scheduler gave it).
With NVML or ``nvidia-smi`` on the node, the local GPU admission (``--allowed_memory``,
``--allowed_load``, ``--gpu_memory_per_run``, ``--sim_startup_time``,
``--max_num_jobs_per_gpu``) places each run on one of them; without, runs are placed by the
per-GPU cap alone. Each run gets ``CUDA_VISIBLE_DEVICES=<one of the job's GPUs>``. A job
without GPUs runs N at once on its CPUs.

**Stopping.** ``stops/<run_id>`` from the driver (a pruned run): SIGTERM to that run's
process group, SIGKILL after the grace it names. ``--timeout``: the worker writes the run's
``reason`` (``timeout after 30s``), then stops it. SIGTERM, SIGINT or SIGHUP to the worker
(scancel, requeue, preemption, bkill): nothing new is taken, the worker exits once its runs
are over; it passes the signal on to them as SIGTERM (SIGKILL after 5 s) unless the
scheduler signals every process of a job itself (Slurm: a second SIGTERM could end a sim
still saving its work). SIGURG (the job's time-limit warning, ``--signal=B:URG@S``
/ ``-wa URG``): each running run gets ``walltime_warning`` and SIGTERM, to save its work;
nothing new is taken.

**Requeued.** A worker whose job the scheduler started again finds its own claims: the
runs among them that were cut short (no exit code, or one written after the wrapper was
signalled) and that the driver has not given to another launch (``run.json``) run again
through the wrapper, which makes them restarts (``<key>.<r>``, ``HPSEARCH_RESUMED=1``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import sys
import time
from collections import deque
from pathlib import Path
from types import FrameType

from hpsearch.backends.cluster import claims
from hpsearch.backends.gpus.admission import GpuLimits
from hpsearch.backends.gpus.backend import GpuBackend
from hpsearch.backends.gpus.probe import FixedGpus, GpuSource, GpuUnavailable, open_gpu_source
from hpsearch.backends.local import KILL_GRACE, LocalBackend
from hpsearch.runs.files import (
    REASON_FILE,
    note_warning,
    read_exit,
    split_launch,
    was_warned,
)
from hpsearch.runs.model import Run

#: seconds the worker sleeps at most between two looks at its runs, stops and signals
TICK = 0.5


def say(text: str) -> None:
    """One line to the job's error log."""
    print(f"hpsearch worker: {text}", file=sys.stderr, flush=True)


def job_gpus(environ: dict[str, str] | None = None) -> list[str]:
    """The job's GPUs: ``CUDA_VISIBLE_DEVICES="0,3"`` -> ``["0", "3"]`` (none when unset or
    empty)."""
    value = (os.environ if environ is None else environ).get("CUDA_VISIBLE_DEVICES", "")
    return [token.strip() for token in value.split(",") if token.strip()]


def _indices(tokens: list[str], source: GpuSource | None) -> list[int] | None:
    """The GPU indices ``tokens`` name (numbers, or UUIDs the source reports); None when
    some token names no GPU this worker can address."""
    if all(t.isdigit() for t in tokens):
        return [int(t) for t in tokens]
    if source is None:
        return None
    by_uuid = {s.uuid: s.index for s in source.sample() if s.uuid}
    found = [int(t) if t.isdigit() else by_uuid.get(t) for t in tokens]
    return None if None in found else [i for i in found if i is not None]


def in_job_backend(queue: claims.Queue, job: str) -> LocalBackend:
    """The backend that runs the pack's runs inside this job (see the module docstring)."""
    tokens = job_gpus()
    if not tokens:
        return LocalBackend(queue.runs_per_job, job_label=job, preload=queue.preload, say=say)
    gpu = queue.gpu
    limits = GpuLimits(allowed_load=float(gpu["allowed_load"]),
                       allowed_memory=float(gpu["allowed_memory"]),
                       max_num_jobs_per_gpu=int(gpu["max_num_jobs_per_gpu"]),
                       sim_startup_time=float(gpu["sim_startup_time"]))
    source: GpuSource | None
    try:
        source = open_gpu_source()
    except GpuUnavailable:
        source = None
    indices = _indices(tokens, source)
    if indices is None:
        say(f"cannot tell the job's GPUs apart (CUDA_VISIBLE_DEVICES={','.join(tokens)}); "
            f"every run shares them, {queue.runs_per_job} at once")
        return LocalBackend(queue.runs_per_job, job_label=job, preload=queue.preload, say=say)
    if source is None:  # nothing to measure: no start-up gate to wait on
        source = FixedGpus(indices)
        limits = GpuLimits(max_num_jobs_per_gpu=limits.max_num_jobs_per_gpu,
                           sim_startup_time=0.0, visible_gpus=tuple(indices))
    else:
        limits = dataclasses.replace(limits, visible_gpus=tuple(indices))
    backend = GpuBackend(source, limits, queue.runs_per_job, say=say, job_label=job,
                         resources=queue.runs[0].resources if queue.runs else None,
                         preload=queue.preload)
    say(f"GPUs {','.join(map(str, indices))} via {source.description}")
    return backend


class Worker:
    """Runs the runs of one pack that this job wins; see the module docstring."""

    def __init__(self, folder: Path, job: str, host: str, queue: claims.Queue,
                 backend: LocalBackend) -> None:
        self.folder = folder
        self.job = job
        self.host = host
        self.queue = queue
        self.backend = backend
        self.runs = {run.run_id: run for run in queue.runs}
        self.waiting: deque[Run] = deque()  # claimed, not started yet (no room)
        self.active: dict[str, float] = {}  # run id -> when it started (monotonic)
        self.stopped: set[str] = set()  # runs asked to stop (by the driver, a timeout...)
        self.cursor = 0  # queue runs before this one are claimed (by someone)
        self.stopping: str | None = None  # the signal that ends this worker
        self.warned = False
        self._warnings_sent = False
        self._stops_sent = False

    # -- signals --------------------------------------------------------------------
    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._on_stop)
        signal.signal(signal.SIGURG, self._on_warning)

    def _on_stop(self, signum: int, _frame: FrameType | None) -> None:
        self.stopping = self.stopping or signal.Signals(signum).name

    def _on_warning(self, _signum: int, _frame: FrameType | None) -> None:
        self.warned = True

    # -- taking runs ----------------------------------------------------------------
    def retake(self) -> None:
        """After a requeue: this job's earlier claims that were cut short run again."""
        stops = claims.stop_requests(self.folder)
        for run_id in sorted(claims.claimed(self.folder)):
            record = claims.read_claim(self.folder, run_id)
            run = self.runs.get(run_id)
            if record is None or record["job"] != self.job or run is None:
                continue
            if self._may_run(run, stops) and self._cut_short(run):
                self.waiting.append(run)
        if self.waiting:
            say(f"started again: {len(self.waiting)} of this job's runs were cut short and "
                "run again")

    def _cut_short(self, run: Run) -> bool:
        """Whether the run's last start under this launch was cut short by the job's end
        (the rule the wrapper applies, before starting the wrapper at all), and nothing of
        this worker's own ended it (a timeout, the time-limit warning)."""
        record = read_exit(run.run_dir)
        if record is not None and split_launch(record.launch)[0] == run.launch and (
                record.signal is None):
            return False
        return not ((run.run_dir / REASON_FILE).exists() or was_warned(run.run_dir, run.launch))

    @staticmethod
    def _may_run(run: Run, stops: dict[str, float]) -> bool:
        """The run directory is still this launch's and the driver did not stop the run."""
        return run.run_id not in stops and claims.owns_run_dir(run)

    def _fill(self) -> None:
        """Start waiting runs, then claim and start new ones, while there is room."""
        room = self.backend.room()
        while room > 0 and self.waiting:
            if not self._start(self.waiting[0]):
                return
            self.waiting.popleft()
            room = self.backend.room()
        if room <= 0 or self.cursor >= len(self.queue.runs):
            return
        taken, stops = claims.claimed(self.folder), claims.stop_requests(self.folder)
        while room > 0 and self.cursor < len(self.queue.runs):
            run = self.queue.runs[self.cursor]
            self.cursor += 1
            if run.run_id in taken or not self._may_run(run, stops):
                continue
            if not claims.claim(self.folder, run.run_id, self.job, self.host):
                continue
            if not self._start(run):
                self.waiting.append(run)
                return
            room = self.backend.room()

    def _start(self, run: Run) -> bool:
        started = self.backend.submit([run], run.launch)
        if run.run_id not in started:
            return False
        self.active[run.run_id] = time.monotonic()
        return True

    # -- watching -------------------------------------------------------------------
    def _stop(self, run_ids: list[str], grace: float) -> None:
        fresh = [r for r in run_ids if r in self.active and r not in self.stopped]
        if fresh:
            self.stopped.update(fresh)
            self.backend.stop(fresh, grace)

    def _watch(self) -> None:
        """The driver's stop requests, timeouts, and this worker's own end or warning."""
        requests = claims.stop_requests(self.folder)
        for run_id, grace in requests.items():
            self._stop([run_id], grace)
        self.waiting = deque(r for r in self.waiting if r.run_id not in requests)
        timeout = self.queue.timeout
        if timeout is not None:
            now = time.monotonic()
            late = [r for r, t in self.active.items()
                    if now - t >= timeout and r not in self.stopped]
            for run_id in late:
                with contextlib.suppress(OSError):
                    (self.runs[run_id].run_dir / REASON_FILE).write_text(
                        f"timeout after {timeout:g}s\n")
            self._stop(late, KILL_GRACE)
        if self.warned and not self._warnings_sent:
            self._warnings_sent = True
            say("time-limit warning: every run gets SIGTERM to save its work")
            for run_id in self.active:
                with contextlib.suppress(OSError):
                    note_warning(self.runs[run_id].run_dir, self.runs[run_id].launch)
            self._stop(list(self.active), self.queue.walltime_warning)
        if self.stopping and not self._stops_sent:
            self._stops_sent = True
            say(f"{self.stopping}: {len(self.active)} run(s) stop")
            if not self.queue.scheduler_signals_runs:
                self._stop(list(self.active), KILL_GRACE)

    def run(self) -> int:
        """Take and run runs until none is left for this job (or it must stop)."""
        self.retake()
        while True:
            self._watch()
            if not self.stopping and not self.warned:
                self._fill()
            for ended in self.backend.poll():
                self.active.pop(ended.run_id, None)
                self.stopped.discard(ended.run_id)
            done_taking = (self.stopping or self.warned
                           or (self.cursor >= len(self.queue.runs) and not self.waiting))
            if not self.active and done_taking:
                return 0
            self.backend.wait(TICK)


def main(argv: list[str]) -> int:
    """``python -m hpsearch.worker PACK_DIR JOB [HOST]``."""
    if len(argv) not in (2, 3):
        say("usage: python -m hpsearch.worker PACK_DIR JOB [HOST]")
        return 2
    folder = Path(argv[0])
    host = argv[2] if len(argv) > 2 and argv[2] else socket.gethostname()
    try:
        queue = claims.read_queue(folder)
    except (OSError, ValueError, KeyError) as exc:
        say(f"cannot read {folder / claims.QUEUE_FILE}: {exc}")
        return 2
    worker = Worker(folder, argv[1], host, queue, in_job_backend(queue, argv[1]))
    worker.install()
    try:
        return worker.run()
    finally:
        worker.backend.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
