"""Read the state of the local NVIDIA GPUs: memory, load and per-process memory.

Two sources, tried in this order by :func:`open_gpu_source`:

1. NVML, through the ``pynvml`` module of the ``nvidia-ml-py`` package: no subprocess,
   one ``nvmlInit`` per source, then a few cheap library calls per GPU and poll.
2. ``nvidia-smi``, when NVML cannot load (no ``libnvidia-ml.so``, driver not loaded).
   Two calls per poll, made at once, whose ``--format=csv,noheader,nounits`` output reads::

       $ nvidia-smi --query-gpu=index,uuid,name,memory.used,memory.total,utilization.gpu \\
             --format=csv,noheader,nounits
       0, GPU-8957c40c-ccda-23ec-9b28-f0ec12f25f2a, NVIDIA GeForce RTX 3090, 5137, 24576, 100
       $ nvidia-smi --query-compute-apps=pid,gpu_uuid,used_memory --format=csv,noheader,nounits
       114687, GPU-8957c40c-ccda-23ec-9b28-f0ec12f25f2a, 19135

   A field the GPU cannot report reads ``[N/A]`` or ``[Not Supported]`` (memory on
   unified-memory parts such as the GB10, per-process memory under Windows WDDM); it
   becomes ``None`` here, never 0.

When neither finds a GPU, :class:`GpuUnavailable` says why in one line, and the caller
uses CPU slots instead. The ``nvidia-smi`` source checks that it lists a GPU with a sample
when it is opened; :func:`opening_sample` hands that sample to the first reader, so a search
starts after one poll, not two. GPU indices are NVML's, i.e. PCI bus order: the order CUDA uses
when ``CUDA_DEVICE_ORDER=PCI_BUS_ID``.

We do not use GPUtil: its last release (2018) imports ``distutils``, which Python 3.12
removed, and it spawns ``nvidia-smi`` twice per poll.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Protocol

MIB = 1 << 20
#: env var that makes :func:`open_gpu_source` skip NVML (``HPSEARCH_NO_NVML=1``)
NO_NVML_ENV = "HPSEARCH_NO_NVML"
#: seconds one poll's ``nvidia-smi`` calls may take together
SMI_TIMEOUT = 30.0

#: the fields of the ``--query-gpu`` call, in order
GPU_FIELDS = ("index", "uuid", "name", "memory.used", "memory.total", "utilization.gpu")
#: the fields of the ``--query-compute-apps`` call, in order
APP_FIELDS = ("pid", "gpu_uuid", "used_memory")
#: what nvidia-smi prints for a value it cannot give
MISSING_VALUES = frozenset(
    {"[N/A]", "N/A", "[Not Supported]", "[Unknown Error]", "[Insufficient Permissions]", ""}
)
#: free-text fields that may themselves contain commas (parsed outside-in)
_TEXT_FIELDS = ("name", "process_name", "gpu_name")
_UNITS = (" MiB", " %", " W", " MHz")


class GpuUnavailable(RuntimeError):
    """No GPU can be watched; ``str()`` is one line that says why."""


@dataclass(frozen=True)
class GpuSample:
    """One GPU at one instant.

    ``None`` marks a value the GPU did not report (e.g. memory on unified-memory parts).
    ``processes`` maps the pid of each compute process to its used memory in MiB
    (``None`` when the driver does not report per-process memory).
    """

    index: int
    name: str
    memory_used_mib: int | None
    memory_total_mib: int | None
    utilization: float | None
    processes: Mapping[int, int | None] = field(default_factory=dict)
    uuid: str | None = None


class GpuSource(Protocol):
    """Something that samples GPUs (NVML or nvidia-smi)."""

    description: str

    def sample(self, indices: Sequence[int] | None = None) -> list[GpuSample]: ...


# ---------------------------------------------------------------- nvidia-smi text


def parse_csv(text: str, fields: Sequence[str]) -> list[dict[str, str | None]]:
    """Parse nvidia-smi ``--query-...`` CSV output into one dict per line.

    Accepts ``csv,noheader,nounits`` (``0, Tesla T4, 3, 15360, 0``) and also the header
    line and the units of plain ``csv`` (``0, Tesla T4, 3 MiB, 15360 MiB, 0 %``), so the
    same parser reads whatever the user pastes. ``[N/A]``/``[Not Supported]`` become
    ``None``. Lines that do not fit (warnings such as ``No devices were found``) are
    skipped. A free-text field (``name``, ``process_name``) may contain commas.
    """
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) > len(fields):
            cells = _join_text_field(cells, fields)
        if len(cells) != len(fields):
            continue
        if [cell.split(" [")[0] for cell in cells] == list(fields):
            continue  # header line of --format=csv
        rows.append({name: _clean(cell) for name, cell in zip(fields, cells, strict=True)})
    return rows


def _join_text_field(cells: list[str], fields: Sequence[str]) -> list[str]:
    """Merge the extra cells of a comma-containing free-text field back into it."""
    text_at = [i for i, name in enumerate(fields) if name in _TEXT_FIELDS]
    if len(text_at) != 1:
        return cells
    i = text_at[0]
    extra = len(cells) - len(fields)
    return [*cells[:i], ", ".join(cells[i : i + extra + 1]), *cells[i + extra + 1 :]]


def _clean(cell: str) -> str | None:
    if cell in MISSING_VALUES:
        return None
    for unit in _UNITS:
        if cell.endswith(unit):
            return cell[: -len(unit)].strip()
    return cell


def _int(value: str | None) -> int | None:
    return None if value is None else int(float(value))


def samples_from_rows(
    gpu_rows: Iterable[Mapping[str, str | None]],
    app_rows: Iterable[Mapping[str, str | None]] = (),
) -> list[GpuSample]:
    """Build samples from parsed ``--query-gpu`` and ``--query-compute-apps`` rows.

    A field the rows lack (a query without ``uuid``, say) reads as missing. Processes
    are attached to their GPU by UUID.
    """
    by_uuid: dict[str, dict[int, int | None]] = {}
    for app in app_rows:
        pid, uuid = _int(app.get("pid")), app.get("gpu_uuid")
        if pid is not None and uuid is not None:
            by_uuid.setdefault(uuid, {})[pid] = _int(app.get("used_memory"))
    samples = []
    for row in gpu_rows:
        index = _int(row.get("index"))
        if index is None:
            continue
        util = row.get("utilization.gpu")
        uuid = row.get("uuid")
        samples.append(
            GpuSample(
                index=index,
                name=row.get("name") or f"GPU {index}",
                memory_used_mib=_int(row.get("memory.used")),
                memory_total_mib=_int(row.get("memory.total")),
                utilization=None if util is None else float(util) / 100.0,
                processes=by_uuid.get(uuid, {}) if uuid else {},
                uuid=uuid,
            )
        )
    return samples


class NvidiaSmi:
    """One poll: ``nvidia-smi`` once per query (its arguments), all at once; their stdouts,
    in order, or GpuUnavailable with the words of the first that failed.

    :meth:`stop` (from any thread) kills the calls of a poll in flight and refuses later
    polls: whoever ends a sampler waits for no nvidia-smi (50-300 ms on a real machine).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[subprocess.Popen[str]] = []  # the poll in flight (one at a time)
        self._stopped = False

    def __call__(self, queries: Sequence[Sequence[str]]) -> list[str]:
        exe = shutil.which("nvidia-smi")
        if exe is None:
            raise GpuUnavailable("nvidia-smi is not on PATH")
        calls: list[subprocess.Popen[str]] = []
        try:
            for args in queries:
                with self._lock:
                    if self._stopped:
                        raise GpuUnavailable("nvidia-smi: the GPU source was stopped")
                    calls.append(subprocess.Popen(
                        [exe, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE, text=True))
                    self._calls = calls
            deadline = time.monotonic() + SMI_TIMEOUT
            done = [call.communicate(timeout=max(0.0, deadline - time.monotonic()))
                    for call in calls]
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise GpuUnavailable(f"nvidia-smi failed: {exc}") from exc
        finally:
            with self._lock:
                self._calls = []
            for call in calls:
                if call.poll() is None:
                    call.kill()
                    call.wait()
        for call, (stdout, stderr) in zip(calls, done, strict=True):
            if call.returncode != 0:
                said = (stdout + stderr).strip().splitlines()
                raise GpuUnavailable(
                    f"nvidia-smi exited with {call.returncode}: {said[0] if said else 'no output'}"
                )
        return [stdout for stdout, _ in done]

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for call in self._calls:
                with contextlib.suppress(OSError):
                    call.kill()  # its poll reaps it


class SmiSource:
    """Samples through two ``nvidia-smi`` calls per poll, made at once (the fallback).
    ``opening``: the sample that showed it lists a GPU, and when it began, until
    :func:`opening_sample` takes it. ``run``: what makes a poll's calls (by default an
    :class:`NvidiaSmi` of its own, which :meth:`stop` stops)."""

    description = "nvidia-smi"

    def __init__(self, run: Callable[[Sequence[Sequence[str]]], list[str]] | None = None) -> None:
        self._run = NvidiaSmi() if run is None else run
        began = time.monotonic()
        samples = self.sample()
        if not samples:
            raise GpuUnavailable("nvidia-smi lists no GPU")
        self.opening: tuple[float, list[GpuSample]] | None = (began, samples)

    def sample(self, indices: Sequence[int] | None = None) -> list[GpuSample]:
        gpus, apps = self._run([
            [f"--query-gpu={','.join(GPU_FIELDS)}", "--format=csv,noheader,nounits"],
            [f"--query-compute-apps={','.join(APP_FIELDS)}", "--format=csv,noheader,nounits"],
        ])
        samples = samples_from_rows(parse_csv(gpus, GPU_FIELDS), parse_csv(apps, APP_FIELDS))
        return _select(samples, indices)

    def stop(self) -> None:
        """Kill a poll in flight; later polls fail (:meth:`NvidiaSmi.stop`)."""
        if isinstance(self._run, NvidiaSmi):
            self._run.stop()


def opening_sample(source: GpuSource) -> tuple[float, list[GpuSample]]:
    """The first sample of a source just opened, with when it began (``time.monotonic()``):
    the one it took to open (its ``opening``, handed out once), else a new one."""
    opening = getattr(source, "opening", None)
    if opening is not None:
        source.opening = None  # type: ignore[attr-defined]
        return opening
    began = time.monotonic()
    return began, source.sample()


# ---------------------------------------------------------------- NVML


def _load_pynvml() -> Any:
    import pynvml

    return pynvml


class NvmlSource:
    """Samples through NVML; ``nvml`` is the ``pynvml`` module or a stand-in for it."""

    description = "NVML"

    def __init__(self, nvml: ModuleType | Any) -> None:
        self._nvml = nvml
        nvml.nvmlInit()
        count = nvml.nvmlDeviceGetCount()
        if count == 0:
            raise GpuUnavailable("NVML loaded but found no GPU")
        self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        self._names = [_text(nvml.nvmlDeviceGetName(h)) for h in self._handles]

    def sample(self, indices: Sequence[int] | None = None) -> list[GpuSample]:
        wanted = range(len(self._handles)) if indices is None else indices
        _check_indices(wanted, len(self._handles))
        return [self._one(i) for i in wanted]

    def _one(self, index: int) -> GpuSample:
        nvml, handle = self._nvml, self._handles[index]
        used = total = util = None
        # unified-memory parts (GB10) answer NOT_SUPPORTED for memory: leave it None
        with contextlib.suppress(nvml.NVMLError):
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            used, total = memory.used // MIB, memory.total // MIB
        with contextlib.suppress(nvml.NVMLError):
            util = nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100.0
        processes: dict[int, int | None] = {}
        with contextlib.suppress(nvml.NVMLError):
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                mem = proc.usedGpuMemory  # bytes; None when the driver cannot tell (WDDM)
                processes[int(proc.pid)] = None if mem is None else mem // MIB
        return GpuSample(index, self._names[index], used, total, util, processes)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


class FixedGpus:
    """GPUs known by index only: a cluster job's ``CUDA_VISIBLE_DEVICES`` on a node with
    neither NVML nor ``nvidia-smi``. They report nothing (``None`` memory and load, no
    processes), so the admission places runs by its per-GPU cap alone."""

    description = "the job's CUDA_VISIBLE_DEVICES (no NVML or nvidia-smi to read them)"

    def __init__(self, indices: Sequence[int]) -> None:
        self.indices = list(indices)

    def sample(self, indices: Sequence[int] | None = None) -> list[GpuSample]:
        return [GpuSample(i, f"GPU {i}", None, None, None) for i in self.indices
                if indices is None or i in indices]


# ---------------------------------------------------------------- choosing a source


def _check_indices(indices: Iterable[int], count: int) -> None:
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise GpuUnavailable(
            f"GPU index {bad[0]} does not exist: this machine has {count} GPU(s), "
            f"0..{count - 1}; fix --visible_gpus"
        )


def _select(samples: list[GpuSample], indices: Sequence[int] | None) -> list[GpuSample]:
    if indices is None:
        return samples
    by_index = {s.index: s for s in samples}
    _check_indices(indices, len(samples))
    return [by_index[i] for i in indices]


def open_gpu_source(
    nvml_loader: Callable[[], Any] = _load_pynvml,
    smi_run: Callable[[Sequence[Sequence[str]]], list[str]] | None = None,
) -> GpuSource:
    """NVML if it loads and sees a GPU, else nvidia-smi; GpuUnavailable if neither.

    The message names both failures, e.g. ``no GPU found (NVML: NVML Shared Library Not
    Found; nvidia-smi: nvidia-smi is not on PATH); running on CPU slots``.

    Env ``HPSEARCH_NO_NVML=1`` skips NVML and goes straight to ``nvidia-smi``: the
    end-to-end tests set it so that a fake ``nvidia-smi`` on PATH is what gets read even
    on a machine whose NVML loads; users may set it when NVML misbehaves.
    """
    try:
        if os.environ.get(NO_NVML_ENV, "") not in ("", "0"):
            raise GpuUnavailable(f"disabled by {NO_NVML_ENV}=1")
        return NvmlSource(nvml_loader())
    except GpuUnavailable as exc:
        nvml_reason = str(exc)
    except Exception as exc:  # NVMLError_*, ImportError, OSError: all mean "no NVML"
        nvml_reason = str(exc) or type(exc).__name__
    try:
        return SmiSource(smi_run)
    except GpuUnavailable as exc:
        smi_reason = str(exc)
    raise GpuUnavailable(
        f"no GPU found (NVML: {nvml_reason}; nvidia-smi: {smi_reason}); running on CPU slots"
    )


_default_source: GpuSource | None = None


def probe_gpus(
    indices: Sequence[int] | None = None, source: GpuSource | None = None
) -> list[GpuSample]:
    """Sample the GPUs ``indices`` (all when None) through ``source``.

    Without a source, the first call opens one (:func:`open_gpu_source`) and later calls
    reuse it. Raises :class:`GpuUnavailable` when no GPU can be read or an index is
    out of range.
    """
    global _default_source
    if source is None:
        if _default_source is None:
            _default_source = open_gpu_source()
        source = _default_source
    return source.sample(indices)
