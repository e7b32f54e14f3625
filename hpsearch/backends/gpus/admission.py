"""Which local GPU may take the next run: a pure policy, fed samples and a clock.

No subprocess, no sleep, no wall clock: the backend passes GPU samples
(:class:`~hpsearch.backends.gpus.probe.GpuSample`) and ``now`` (seconds, any monotonic
origin). One poll of the backend reads::

    policy.observe(probe_gpus(), now)          # once per sample
    need = run.resources.gpu_memory_mib        # MiB, None: learn it
    while (gpu := policy.choose(now, run.run_id, need)) is not None:
        pid = start(run, CUDA_VISIBLE_DEVICES=str(gpu))
        policy.launched(gpu, run.run_id, pid, now, need)   # before the next choose()
    gpus = policy.choose_many(now, run.run_id, need, count=2)   # a run of 2 GPUs: both
    for gpu in gpus or ():                                      # admit it now, or None
        policy.launched(gpu, run.run_id, pid, now, need)        # its need on each of them
    ...
    policy.ended(run_id)                       # when the run's process is gone
    policy.oom(run_id)                         # before retrying a CUDA out-of-memory run

The flags keep hypnettorch's meaning, with these improvements:

* memory: a GPU takes a run when ``(used + reserved + need) / total <= allowed_memory``,
  where ``reserved`` is what our runs on it will still allocate
  (``need - memory seen for that run``, summed), so a burst of launches cannot all pass
  on one stale snapshot. ``need`` is what the run's resources name
  (:attr:`hpsearch.runs.model.Resources.gpu_memory_mib`, ``--gpu_memory_per_run``), else the
  largest peak per-process memory seen so far for a run of this search (running or ended),
  else 0;
* load: the mean of the last ``load_window`` samples, not one reading;
* the start-up gate (``--sim_startup_time``) closes only the GPU that got the run, and
  opens as soon as that run's memory shows in the per-process list, or it ends;
* ``--max_num_jobs_per_gpu`` counts only our runs, as in hypnettorch.

A GPU that does not report a value (``None`` in the sample: unified-memory parts report no
memory total) is not judged on it: the job cap and the start-up gate still hold.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from hpsearch.backends.gpus.probe import GpuSample

#: factor by which the memory need of a run grows after a CUDA out-of-memory failure
OOM_GROWTH = 1.5

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)
_TO_MIB = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024 * 1024}


def parse_mib(text: str | int | None) -> int | None:
    """``"4GiB"``, ``"4G"``, ``"4096MiB"``, ``"4096"`` -> MiB (binary units; "GB" = GiB).

    A plain number is MiB. ``None`` or ``""`` -> ``None`` (learn it). A bad value raises
    ValueError with a one-line message naming the flag.
    """
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if not match:
        raise ValueError(
            f"--gpu_memory_per_run={text!r} is not a size; write e.g. 4GiB, 4096MiB or 4096"
        )
    return round(float(match.group(1)) * _TO_MIB[match.group(2).upper()])


def parse_visible_gpus(text: str | None) -> tuple[int, ...] | None:
    """``"0,2"`` -> ``(0, 2)``; ``""``/None -> None (all GPUs)."""
    if not text or not text.strip():
        return None
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(
            f"--visible_gpus={text!r} is not a list of GPU indices; write e.g. 0,2"
        ) from None


@dataclass(frozen=True)
class GpuLimits:
    """The machine's admission settings: ``--allowed_load``, ``--allowed_memory``,
    ``--max_num_jobs_per_gpu``, ``--sim_startup_time``, ``--visible_gpus`` (None = all).
    What a run needs comes with the run (``need`` below), not from here."""

    allowed_load: float = 0.5
    allowed_memory: float = 0.5
    max_num_jobs_per_gpu: int = 1
    sim_startup_time: float = 60.0
    visible_gpus: tuple[int, ...] | None = None  # None = all
    load_window: int = 5


@dataclass
class _Launch:
    run_id: str
    gpu: int
    pid: int | None
    launched_at: float
    seen: bool = False  # the pid showed up in the GPU's process list
    mib_now: int = 0  # its memory in the latest sample


@dataclass
class GpuAdmission:
    """Decide where the next run goes; remember what our runs hold and will hold."""

    limits: GpuLimits
    _latest: dict[int, GpuSample] = field(default_factory=dict)
    _loads: dict[int, deque[float]] = field(default_factory=dict)
    #: (run_id, gpu) -> our run there (a run of several GPUs: one entry per GPU)
    _live: dict[tuple[str, int], _Launch] = field(default_factory=dict)
    _peaks: dict[str, int] = field(default_factory=dict)  # run_id -> largest MiB seen
    _learned_mib: int = 0  # largest per-process memory seen for any of our runs
    _need_override: dict[str, int] = field(default_factory=dict)  # after OOM
    _declared: dict[str, int] = field(default_factory=dict)  # run_id -> MiB it said it needs
    #: MiB the latest sample shows held by our runs that have ended since: their processes
    #: are gone, so that memory is free again before the next sample says so
    _freed: dict[int, int] = field(default_factory=dict)

    # ------------------------------------------------------------ inputs

    def observe(self, samples: Iterable[GpuSample], now: float) -> None:
        """Take one sample of the GPUs (call once per probe, not per decision)."""
        del now  # samples carry no age; kept so every input names its instant
        self._freed.clear()
        for sample in samples:
            self._latest[sample.index] = sample
            loads = self._loads.setdefault(sample.index, deque(maxlen=self.limits.load_window))
            if sample.utilization is not None:
                loads.append(sample.utilization)
            for launch in self._live.values():
                if launch.gpu == sample.index and launch.pid in sample.processes:
                    mib = sample.processes[launch.pid]
                    launch.seen = True
                    launch.mib_now = mib or 0
                    peak = max(self._peaks.get(launch.run_id, 0), mib or 0)
                    self._peaks[launch.run_id] = peak
                    self._learned_mib = max(self._learned_mib, peak)

    def launched(self, gpu: int, run_id: str, pid: int | None, now: float,
                 need: int | None = None) -> None:
        """Record that ``run_id`` started on ``gpu`` as process ``pid`` at ``now``, expected
        to take ``need`` MiB (None: learn it).

        ``pid`` is the process that will allocate GPU memory (the one NVML lists). A run of
        several GPUs is launched on each of them; ``need`` is what it takes on each.
        """
        self._live[(run_id, gpu)] = _Launch(run_id, gpu, pid, now)
        if need is not None:
            self._declared[run_id] = need

    def ended(self, run_id: str, peak_mib: int | None = None) -> None:
        """Forget a run whose process is gone; learn its peak (``peak_mib`` if the backend
        measured one itself) for later runs."""
        for key in [k for k in self._live if k[0] == run_id]:
            launch = self._live.pop(key)
            if launch.mib_now:
                self._freed[launch.gpu] = self._freed.get(launch.gpu, 0) + launch.mib_now
        self._declared.pop(run_id, None)
        peak = max(self._peaks.get(run_id, 0), peak_mib or 0)
        if peak:
            self._peaks[run_id] = peak
            self._learned_mib = max(self._learned_mib, peak)

    def oom(self, run_id: str) -> int:
        """Raise the memory need of ``run_id`` after a CUDA out-of-memory; return it (MiB).

        The new need is OOM_GROWTH times the larger of its observed peak and its former
        need; when neither is known, all the memory ``allowed_memory`` lets one run take
        on the largest GPU. Never more than that, so the retry can still be placed.
        """
        cap = self.largest_cap_mib()
        known = max(self._peaks.get(run_id, 0), self.need_mib(run_id))
        need = round(known * OOM_GROWTH) if known else cap
        if cap:
            need = min(need, cap)
        self._need_override[run_id] = need
        return need

    # ------------------------------------------------------------ decisions

    def need_mib(self, run_id: str | None = None, need: int | None = None) -> int:
        """MiB a run is expected to allocate (0 = unknown: only the gate protects): after an
        out-of-memory its raised need, else ``need`` or what it declared when launched,
        else what runs were seen to take."""
        if run_id is not None and run_id in self._need_override:
            return self._need_override[run_id]
        if need is None and run_id is not None:
            need = self._declared.get(run_id)
        if need is not None:
            return need
        # a learned need never exceeds what one run may take on the largest GPU, so a run
        # bigger than --allowed_memory's share still starts, alone, on an idle GPU
        cap = self.largest_cap_mib()
        return min(self._learned_mib, cap) if cap else self._learned_mib

    def choose(self, now: float, run_id: str | None = None,
               need: int | None = None) -> int | None:
        """The eligible GPU with the most free memory for ``run_id``, expected to take
        ``need`` MiB (None: learn it), or None.

        Call :meth:`launched` before the next ``choose``: until then the same GPU is
        offered again.
        """
        chosen = self.choose_many(now, run_id, need)
        return None if chosen is None else chosen[0]

    def choose_many(self, now: float, run_id: str | None = None, need: int | None = None,
                    count: int = 1, exclude: Collection[int] = ()) -> list[int] | None:
        """``count`` GPUs (not among ``exclude``) that each admit the run now, those with the
        most free memory chosen first, in ascending order (as ``CUDA_VISIBLE_DEVICES`` lists
        them); None when fewer do. Call :meth:`launched` on each before the next choice."""
        need = self.need_mib(run_id, need)
        after_oom = run_id is not None and run_id in self._need_override
        free = [g for g in self.candidates() if g not in exclude
                and self.refusal(g, now, need, after_oom) is None]
        if len(free) < count:
            return None
        return sorted(sorted(free, key=lambda g: (-self._free_mib(g), g))[:count])

    def refusal(self, gpu: int, now: float, need: int | None = None,
                after_oom: bool = False) -> str | None:
        """Why ``gpu`` refuses a run needing ``need`` MiB now (None: it accepts).

        ``after_oom``: the run is the retry of a CUDA out-of-memory failure; it also waits
        until each of our runs on the GPU shows its memory (or ends), whatever
        ``--sim_startup_time`` says, since an unseen run of unknown need reserves nothing.
        """
        limits = self.limits
        if limits.visible_gpus is not None and gpu not in limits.visible_gpus:
            return "not in --visible_gpus"
        sample = self._latest.get(gpu)
        if sample is None:
            return "no sample yet"
        ours = self.runs_on(gpu)
        if self.full(gpu):
            return f"{len(ours)} of our runs, --max_num_jobs_per_gpu={limits.max_num_jobs_per_gpu}"
        starting = [r for r in ours if not r.seen and now - r.launched_at < limits.sim_startup_time]
        if starting:
            return f"run {starting[0].run_id} still starting (no GPU memory seen yet)"
        unseen = [r for r in ours if not r.seen]
        if after_oom and unseen:
            return f"retry after out of memory waits for run {unseen[0].run_id} to show its memory"
        load = self.load(gpu)
        if load > limits.allowed_load:
            return f"load {load:.2f} > --allowed_load={limits.allowed_load}"
        total = sample.memory_total_mib
        if total:
            need = self.need_mib() if need is None else need
            wanted = self._used_mib(gpu) + self.reserved_mib(gpu) + need
            if wanted > limits.allowed_memory * total:
                return (
                    f"memory {wanted}/{total} MiB (used+reserved+need) > "
                    f"--allowed_memory={limits.allowed_memory}"
                )
        return None

    def fits_at_all(self, run_id: str | None = None, need: int | None = None) -> bool:
        """False when the run's need (:meth:`need_mib`) exceeds ``allowed_memory`` of every
        known GPU."""
        cap = self.largest_cap_mib()
        return not cap or self.need_mib(run_id, need) <= cap

    # ------------------------------------------------------------ state

    def full(self, gpu: int) -> bool:
        """Whether ``gpu`` holds ``--max_num_jobs_per_gpu`` of our runs: then only one of
        them ending lets it take another, whatever a new sample says."""
        return len(self.runs_on(gpu)) >= self.limits.max_num_jobs_per_gpu

    def runs_on(self, gpu: int) -> list[_Launch]:
        """Our live runs on ``gpu``."""
        return [r for r in self._live.values() if r.gpu == gpu]

    def gpus_of(self, run_id: str) -> list[int]:
        """The GPUs ``run_id`` runs on (none: it is not ours, or it ended)."""
        return sorted(gpu for rid, gpu in self._live if rid == run_id)

    def load(self, gpu: int) -> float:
        """Mean utilization (0..1) over the last ``load_window`` samples (0 if none)."""
        loads = self._loads.get(gpu)
        return sum(loads) / len(loads) if loads else 0.0

    def reserved_mib(self, gpu: int) -> int:
        """Memory our runs on ``gpu`` are expected to allocate beyond what they hold now."""
        return sum(max(0, self.need_mib(r.run_id) - r.mib_now) for r in self.runs_on(gpu))

    def peak_mib(self, run_id: str) -> int | None:
        """Largest per-process memory seen for ``run_id`` (None if never seen)."""
        return self._peaks.get(run_id)

    def gpus(self) -> list[int]:
        """Every GPU sampled so far, by index (whether ``--visible_gpus`` allows it or not)."""
        return sorted(self._latest)

    def candidates(self) -> list[int]:
        """The GPUs sampled so far that ``--visible_gpus`` allows, by index."""
        gpus = sorted(self._latest)
        if self.limits.visible_gpus is not None:
            gpus = [g for g in gpus if g in self.limits.visible_gpus]
        return gpus

    def _used_mib(self, gpu: int) -> int:
        """Used memory of the latest sample, less what our runs ended since then held.

        Never less than what the sample's processes hold: nvidia-smi reads the GPUs and the
        processes in two calls, so a run that allocated between them shows in the process
        list only, and taking the GPU's older total would admit a second run on memory
        the first one holds already."""
        sample = self._latest[gpu]
        held = sum(mib or 0 for mib in sample.processes.values())
        used = held if sample.memory_used_mib is None else max(sample.memory_used_mib, held)
        return max(0, used - self._freed.get(gpu, 0))

    def _free_mib(self, gpu: int) -> float:
        total = self._latest[gpu].memory_total_mib
        if not total:
            return float("-inf")  # unknown memory: prefer GPUs that report it
        return total - self._used_mib(gpu) - self.reserved_mib(gpu)

    def largest_cap_mib(self) -> int:
        """MiB one run may take on the largest allowed GPU (0: no GPU reports memory)."""
        totals = [
            s.memory_total_mib
            for g, s in self._latest.items()
            if s.memory_total_mib
            and (self.limits.visible_gpus is None or g in self.limits.visible_gpus)
        ]
        return int(self.limits.allowed_memory * max(totals)) if totals else 0
