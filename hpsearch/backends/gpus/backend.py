"""Run the search on local GPUs: as many runs at once as the GPU admission lets through.

A :class:`GpuBackend` is a :class:`~hpsearch.backends.local.LocalBackend` (same wrapper,
same pidfd wake-ups, same restart rules) whose room is decided by
:class:`~hpsearch.backends.gpus.admission.GpuAdmission`, fed by a
:class:`~hpsearch.backends.gpus.probe.GpuSource` sampled at most every
``PROBE_INTERVAL`` seconds by a background :class:`Sampler`, so the driver never waits on
a sample; a new sample wakes a driver waiting for a GPU. After a run ended, the next runs
are placed on the last sample first, less the memory the ended runs held in it (their
processes are gone, so it is free); only when that admits nothing, and a GPU refuses on what a
sample says (not because it holds ``--max_num_jobs_per_gpu`` of our runs: no sample changes
that), is the next sample hurried, ``PROBE_GAP`` after the last one at the earliest. Each run
is started with::

    CUDA_VISIBLE_DEVICES=<gpu index>  CUDA_DEVICE_ORDER=PCI_BUS_ID

and reported with ``extra={"gpu": <index>}`` (a results column). What a run needs comes with it
(:class:`~hpsearch.runs.model.Resources`): a run needing no GPU takes a slot only, with
``CUDA_VISIBLE_DEVICES=`` (no GPU); one needing N GPUs starts only when N GPUs each admit it at
once (:meth:`GpuAdmission.choose_many`), with ``CUDA_VISIBLE_DEVICES=0,1`` listing them
(``extra={"gpu": "0,1"}``), its ``gpu_memory_mib`` (else what runs were seen to take) reserved
on each. :meth:`GpuBackend.room` places runs not yet submitted as needing what ``resources``
(the search's flags) names; while a run of several GPUs waits, :meth:`GpuBackend.choices` asks
the driver to offer a few more queued runs, so a smaller one may start where it cannot, and
:mod:`~hpsearch.backends.gpus.fairness` keeps that from starving it.

NVML and ``nvidia-smi`` list the pid of the process that holds GPU memory: the sim, a
child of our ``sh`` wrapper. Every run starts in a new session whose id is the wrapper's
pid, so a listed pid belongs to our run when field 6 (session) of ``/proc/<pid>/stat`` is
the wrapper's pid. The samples handed to the policy have such pids replaced by the
wrapper's (memory of several processes of one run added up). A pid this machine cannot
see (a container without the host's pid namespace) stays unmatched: then the start-up gate
lifts only after ``--sim_startup_time`` and the need is not learned.

A run that failed with ``CUDA out of memory`` in its stderr gets a larger reservation
(:meth:`GpuAdmission.oom`) before the driver retries it under the same run id.
"""

from __future__ import annotations

import contextlib
import copy
import os
import selectors
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from hpsearch.backends.base import BackendError, Ended
from hpsearch.backends.gpus.admission import GpuAdmission, GpuLimits
from hpsearch.backends.gpus.fairness import Fairness
from hpsearch.backends.gpus.probe import GpuSample, GpuSource, GpuUnavailable, opening_sample
from hpsearch.backends.local import LocalBackend
from hpsearch.runs.files import read_start, stderr_says_oom
from hpsearch.runs.model import Resources, Run
from hpsearch.runs.preload import PreloadOptions

#: seconds between GPU samples while runs wait for a GPU
PROBE_INTERVAL = 0.5
#: least seconds between two samples (a run's end asks for one this soon)
PROBE_GAP = 0.1
#: consecutive failed samples after which the search stops with a BackendError
MAX_PROBE_FAILURES = 20
#: seconds runs may wait for a GPU, with none of ours running, before we say why
SAY_WAITING_AFTER = 10.0


def session_of(pid: int) -> int | None:
    """Field 6 of ``/proc/<pid>/stat`` (the session id), None if the pid is not visible.

    ``/proc/4242/stat`` reads ``4242 (python3) S 4241 4241 4241 0 -1 ...``: after the
    command name in parentheses come state, ppid, pgrp, session.
    """
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[3])
    except (OSError, IndexError, ValueError):
        return None


def gpus_from_environ(pid: int) -> list[int]:
    """The GPUs ``CUDA_VISIBLE_DEVICES`` of a live process we started lists (after a driver
    restart); none when it is unreadable or lists no index."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            entries = f.read().split(b"\0")
    except OSError:
        return []
    for entry in entries:
        if entry.startswith(b"CUDA_VISIBLE_DEVICES="):
            values = entry.split(b"=", 1)[1].split(b",")
            return [int(v) for v in values if v.isdigit()]
    return []


def gpu_column(gpus: Sequence[int]) -> int | str:
    """The results' ``gpu`` of a run on ``gpus``: ``1``, or ``"0,1"`` for several."""
    return gpus[0] if len(gpus) == 1 else ",".join(map(str, gpus))


def by_session(samples: Sequence[GpuSample], wrappers: set[int],
               session: Callable[[int], int | None] = session_of) -> list[GpuSample]:
    """``samples`` with each process of one of our runs keyed by its wrapper's pid."""
    mapped = []
    for sample in samples:
        processes: dict[int, int | None] = {}
        for pid, mib in sample.processes.items():
            sid = session(pid)
            key = sid if sid is not None and sid in wrappers else pid
            if key in processes:
                known = processes[key]
                processes[key] = None if known is None or mib is None else known + mib
            else:
                processes[key] = mib
        mapped.append(replace(sample, processes=processes))
    return mapped


class Sampler(threading.Thread):
    """Samples ``source`` every ``interval`` seconds in the background.

    The driver's loop never waits on a sample (``nvidia-smi`` takes 50-300 ms): after each
    one, a byte is written to :attr:`read_fd`'s pipe, which the backend's selector watches
    next to the runs' pidfds, so a sample wakes a driver waiting for a GPU. :meth:`hurry`
    asks for the next sample now, but never sooner than ``gap`` after the last one.
    """

    def __init__(self, source: GpuSource, interval: float = PROBE_INTERVAL,
                 gap: float = PROBE_GAP, last: float | None = None) -> None:
        """``last``: when the sample the caller took itself began (``time.monotonic()``);
        the first one here then comes ``interval`` after it (or when hurried, ``gap``
        after it), not at once."""
        super().__init__(name="hpsearch-gpu-sampler", daemon=True)
        self.source, self.interval, self.gap, self.last = source, interval, gap, last
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self.read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._latest: tuple[float, list[GpuSample] | GpuUnavailable] | None = None

    def run(self) -> None:
        if self.last is not None:
            self._pause(self.last, self.last + self.interval)
        while not self._stopping.is_set():
            began = time.monotonic()
            try:
                result: list[GpuSample] | GpuUnavailable = self.source.sample()
            except GpuUnavailable as exc:
                result = exc
            with self._lock:
                self._latest = (began, result)
            with contextlib.suppress(BlockingIOError):
                os.write(self._write_fd, b".")
            self._pause(began, time.monotonic() + self.interval)

    def _pause(self, began: float, until: float) -> None:
        """Until ``until``, or until hurried but ``gap`` after ``began`` at the earliest."""
        self._wake.wait(max(0.0, until - time.monotonic()))
        self._wake.clear()
        self._stopping.wait(max(0.0, began + self.gap - time.monotonic()))

    def take(self) -> tuple[float, list[GpuSample] | GpuUnavailable] | None:
        """The sample (or failure) taken since the last call, with its time; else None."""
        with contextlib.suppress(BlockingIOError):
            os.read(self.read_fd, 4096)
        with self._lock:
            latest, self._latest = self._latest, None
        return latest

    def hurry(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """End the thread without waiting for a sample in flight: a source whose poll is a
        subprocess (:meth:`~hpsearch.backends.gpus.probe.SmiSource.stop`) kills it."""
        self._stopping.set()
        self._wake.set()
        stop_source = getattr(self.source, "stop", None)
        if stop_source is not None:
            stop_source()
        if self.is_alive():
            self.join(timeout=5)
        os.close(self.read_fd)
        os.close(self._write_fd)


class GpuBackend(LocalBackend):
    """Runs go to the GPUs ``limits`` admit; ``num_jobs`` (if given) caps the total;
    ``resources``: what a run not yet submitted is taken to need (see the module docstring;
    by default a local GPU run's)."""

    name = "local"
    measures_gpus = True

    def __init__(self, source: GpuSource, limits: GpuLimits, num_jobs: int | None = None,
                 timeout: float | None = None, say: Callable[[str], None] = print,
                 job_label: str = "", *, resources: Resources | None = None,
                 preload: PreloadOptions | None = None) -> None:
        super().__init__(num_jobs if num_jobs is not None else 1 << 30, timeout,
                         job_label=job_label, preload=preload, say=say)
        self.source = source
        self.limits = limits
        self.resources = resources or Resources()
        self.policy = GpuAdmission(limits)
        self.fairness = Fairness()
        self.say = say
        self._run_dirs: dict[str, Path] = {}
        self._probe_failures = 0
        self._stale = False  # runs ended after the last sample was taken
        self._last_end = float("-inf")
        self._blocked_since: float | None = None
        self._said_waiting = False
        # the first sample in the foreground (the one that opened the source, if it took
        # one): GpuUnavailable here means "use CPU slots"
        began, samples = opening_sample(source)
        self._observe(began, samples)
        self.sampler = Sampler(source, last=began)
        self._selector.register(self.sampler.read_fd, selectors.EVENT_READ)
        self.sampler.start()

    # -- sampling -------------------------------------------------------------------
    def _refresh(self) -> None:
        """Feed the policy the sampler's latest sample, if there is a new one."""
        taken = self.sampler.take()
        if taken is None:
            return
        began, result = taken
        if isinstance(result, GpuUnavailable):
            self._probe_failures += 1
            if self._probe_failures >= MAX_PROBE_FAILURES:
                raise BackendError(f"cannot read the GPUs ({self.source.description}): "
                                   f"{result}")
            return
        self._probe_failures = 0
        self._observe(began, result)

    def _observe(self, began: float, samples: list[GpuSample]) -> None:
        wrappers = {active.pid for active in self._active.values()}
        self.policy.observe(by_session(samples, wrappers), began)
        self._stale = self._stale and began < self._last_end

    def fits_at_all(self) -> bool:
        """False when a run's GPU memory (``--gpu_memory_per_run``) exceeds
        ``--allowed_memory`` of every GPU."""
        return self.policy.fits_at_all(need=self.resources.gpu_memory_mib)

    def refusal(self, resources: Resources) -> str | None:
        if resources.nodes > 1:
            return super().refusal(resources)
        n = len(self.policy.candidates())
        if resources.gpus > n:
            return (f"{resources.gpus} GPUs per run, but this machine lets the search use "
                    f"{n} GPU{'s' if n != 1 else ''} ({self.source.description})")
        return None

    # -- starting -------------------------------------------------------------------
    def _cap_left(self) -> int:
        return max(0, self.slots - len(self._active))

    def room(self) -> int:
        """How many runs the GPUs take now (each placed as if launched, on a copy)."""
        if self._held():
            return 0
        self._refresh()
        room = self._trial_room()
        if room == 0 and self._cap_left() > 0:
            if self._stale and not all(map(self.policy.full, self.policy.candidates())):
                self.sampler.hurry()  # a run ended: its memory may be free now
            self._note_waiting(time.monotonic())
        else:
            self._blocked_since = None
            self._said_waiting = False
        return room

    def choices(self) -> int:
        """While a run of several GPUs waits: one more queued run per GPU, to start where
        it cannot."""
        return len(self.policy.candidates()) if self.fairness.waiting else 0

    def _trial_room(self) -> int:
        """Runs of the search's shape the GPUs not held take now, plus the run holding GPUs
        (:mod:`~hpsearch.backends.gpus.fairness`) if it fits."""
        if self.resources.gpus == 0:  # runs of no GPU (--gpus_per_run=0): slots only
            return self._cap_left()
        now = time.monotonic()
        trial = copy.deepcopy(self.policy)
        room = 0
        need = self.resources.gpu_memory_mib
        holder = self.fairness.holder
        if holder is not None and trial.choose_many(
                now, holder, need, self.fairness.waiting[holder][1]) is not None:
            room += 1
        while room < self._cap_left():
            gpus = trial.choose_many(now, need=need, count=self.resources.gpus,
                                     exclude=self.fairness.blocked(None))
            if gpus is None:
                break
            for gpu in gpus:
                trial.launched(gpu, f"trial-{room}", None, now, need)
            room += 1
        return room

    def _hold_for_starving(self, now: float) -> None:
        """Let the run that waited too long hold the GPUs it needs (fewest of our runs on
        them first), unless one holds GPUs already."""
        if self.fairness.holder is not None:
            return
        starving = self.fairness.starving(now)
        if starving is not None:
            run_id, count = starving
            gpus = sorted(self.policy.candidates(),
                          key=lambda g: (len(self.policy.runs_on(g)), g))[:count]
            self.fairness.hold(run_id, gpus)

    def _note_waiting(self, now: float) -> None:
        """Say why, once, when runs waited ``SAY_WAITING_AFTER`` s with none of ours going."""
        if self._active:
            self._blocked_since = None
            return
        if self._blocked_since is None:
            self._blocked_since = now
        elif not self._said_waiting and now - self._blocked_since >= SAY_WAITING_AFTER:
            self._said_waiting = True
            need = self.policy.need_mib(need=self.resources.gpu_memory_mib)
            reasons = "; ".join(f"GPU {gpu}: {self.policy.refusal(gpu, now, need)}"
                                for gpu in self.policy.candidates())
            self.say(f"waiting for a GPU ({reasons})")

    def submit(self, runs: Sequence[Run], key: str) -> dict[str, str]:
        """Start each run the GPUs admit now, as its resources say (see the module
        docstring); a run not started is left out of the answer."""
        started = {}
        now = time.monotonic()
        if self.fairness.holder not in {r.run_id for r in runs}:
            self.fairness.forget(self.fairness.holder or "")  # no longer offered: let go
        self._hold_for_starving(now)
        for run in runs:
            if not self._cap_left():
                break
            if run.resources.gpus == 0:  # a slot, no GPU
                job = self._launch(run, {**run.env, "CUDA_VISIBLE_DEVICES": ""})
                if job is not None:
                    started[run.run_id] = job
                continue
            need = run.resources.gpu_memory_mib
            gpus = self.policy.choose_many(now, run.run_id, need, run.resources.gpus,
                                           exclude=self.fairness.blocked(run.run_id))
            if gpus is None:  # too few GPUs admit it now (or a retry after OOM needs more)
                self.fairness.refused(run.run_id, run.resources.gpus, now)
                continue
            env = {**run.env, "CUDA_VISIBLE_DEVICES": ",".join(map(str, gpus)),
                   "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
            job = self._launch(run, env)
            if job is None:  # its zygote imports (LocalBackend.room is 0 until it is done)
                break
            started[run.run_id] = job
            active = self._active[run.run_id]
            active.extra["gpu"] = gpu_column(gpus)
            self._run_dirs[run.run_id] = run.run_dir
            for gpu in gpus:
                self.policy.launched(gpu, run.run_id, active.pid, now, need)
            self.fairness.started(run.run_id, now)
        return started

    # -- watching -------------------------------------------------------------------
    def poll(self) -> list[Ended]:
        self._refresh()  # also drains the sampler's pipe, so the next wait blocks again
        ended = super().poll()
        for end in ended:
            run_dir = self._run_dirs.pop(end.run_id, None)
            if end.exit_code != 0 and run_dir is not None and stderr_says_oom(run_dir):
                need = self.policy.oom(end.run_id)
                self.say(f"run {end.run_id} ran out of GPU memory; its retry reserves "
                         f"{need} MiB")
            self.policy.ended(end.run_id)
            self.fairness.ended(end.run_id, time.monotonic())
        if ended:
            self._stale, self._last_end = True, time.monotonic()
        return ended

    # -- restart and stop -----------------------------------------------------------
    def reattach(self, jobs: Mapping[str, tuple[Run, str]]) -> list[Ended]:
        """Adopt live runs of a killed driver on the GPU their environment names."""
        ended = super().reattach(jobs)
        now = time.monotonic()
        for run_id, active in self._active.items():
            start = read_start(active.run.run_dir)  # a forked run's environ is its zygote's
            listed = start.cuda_visible_devices.split(",") if start is not None else []
            gpus = [int(v) for v in listed if v.isdigit()] or gpus_from_environ(active.pid)
            self._run_dirs[run_id] = active.run.run_dir
            if gpus:
                active.extra["gpu"] = gpu_column(gpus)
            for gpu in gpus:
                self.policy.launched(gpu, run_id, active.pid, now,
                                     active.run.resources.gpu_memory_mib)
        return ended

    def cancel(self, run_ids: Sequence[str] | None = None) -> None:
        gone = list(self._active) if run_ids is None else list(run_ids)
        super().cancel(run_ids)
        for run_id in gone:
            self._run_dirs.pop(run_id, None)
            self.policy.ended(run_id)

    def close(self) -> None:
        self._selector.unregister(self.sampler.read_fd)
        self.sampler.stop()
        super().close()
