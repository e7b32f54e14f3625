"""The GPU probe: nvidia-smi text parsing, NVML with recorded values, and the fallback.

NVML cannot run here (no GPU, no libnvidia-ml.so), so the NVML layer is tested with a
stand-in module that returns values recorded on real machines, in pynvml's own ctypes
structs. The nvidia-smi parser is tested on real nvidia-smi output (sources in
tests/data/gpu/SOURCES.md), and the fallback end to end through tests/fakes/nvidia-smi.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pynvml
import pytest
from conftest import pid_alive

from hpsearch.backends.gpus.probe import (
    GPU_FIELDS,
    GpuUnavailable,
    NvidiaSmi,
    NvmlSource,
    SmiSource,
    open_gpu_source,
    parse_csv,
    probe_gpus,
    samples_from_rows,
)

DATA = Path(__file__).parent / "data" / "gpu"
FAKES = Path(__file__).parent / "fakes"
MIB = 1 << 20


def read(name):
    return (DATA / name).read_text()


# ---------------------------------------------------------------- real nvidia-smi text


def test_eight_a100s_with_units():
    # `--query-gpu=index,name,memory.total,memory.used,utilization.gpu --format=csv,noheader`
    # on an 8 x A100 node (public cluster snapshot, see SOURCES.md)
    fields = ("index", "name", "memory.total", "memory.used", "utilization.gpu")
    gpus = samples_from_rows(parse_csv(read("query_gpu_a100x8_units.txt"), fields))
    assert [g.index for g in gpus] == list(range(8))
    assert gpus[2].name == "NVIDIA A100-SXM4-80GB"
    assert (gpus[2].memory_used_mib, gpus[2].memory_total_mib) == (72823, 81920)
    assert gpus[0].utilization == pytest.approx(0.87)
    assert gpus[2].utilization == 0.0
    assert gpus[0].processes == {}


def test_header_line_units_and_na():
    # utkuozdemir/nvidia_gpu_exporter internal/exporter/testdata/query.txt (RTX 2080 SUPER)
    text = read("query_gpu_rtx2080_header.txt")
    fields = [cell.split(" [")[0] for cell in text.splitlines()[0].split(", ")]
    (row,) = parse_csv(text, fields)
    assert row["serial"] is None  # "[N/A]"
    assert row["memory.used"] == "575" and row["fan.speed"] == "38"
    (gpu,) = samples_from_rows([row])
    assert (gpu.index, gpu.name) == (0, "NVIDIA GeForce RTX 2080 SUPER")
    assert (gpu.memory_used_mib, gpu.memory_total_mib, gpu.utilization) == (575, None, None)
    assert gpu.uuid == "GPU-df6e7a7c-7314-46f8-abc4-b88b36dcf3aa"


def test_unified_memory_gb10_reports_na_memory():
    # unslothai/unsloth#10283: DGX Spark (GB10), with header
    rows = parse_csv(
        read("query_gpu_gb10_header_na.txt"), ("memory.free", "memory.total", "memory.used")
    )
    assert rows == [{"memory.free": None, "memory.total": None, "memory.used": None}]
    # mostlygeek/llama-swap#782: same part, no header
    fields = ("memory.used", "memory.total", "utilization.memory")
    rows = parse_csv(read("query_gpu_gb10_na_nounits.txt"), fields)
    assert rows == [{"memory.used": None, "memory.total": None, "utilization.memory": "0"}]


def test_gb10_process_memory_attaches_to_its_gpu_by_uuid():
    # mostlygeek/llama-swap#782: per-process memory still works on the GB10
    fields = ("gpu_uuid", "pid", "process_name", "used_memory")
    apps = parse_csv(read("compute_apps_gb10_nounits.txt"), fields)
    assert apps == [
        {"gpu_uuid": "GPU-...", "pid": "114687", "process_name": "/usr/local/bin/python",
         "used_memory": "19135"}
    ]  # fmt: skip
    gpu_row = {"index": "0", "uuid": "GPU-...", "name": "NVIDIA GB10"}
    (gpu,) = samples_from_rows([gpu_row], apps)
    assert gpu.processes == {114687: 19135}
    assert gpu.memory_total_mib is None


def test_not_supported_fields_become_none():
    fields = ("temperature.gpu", "utilization.gpu", "power.draw", "memory.used", "memory.total")
    (row,) = parse_csv(read("query_gpu_not_supported_nounits.txt"), fields)
    assert row == {"temperature.gpu": "55", "utilization.gpu": None, "power.draw": None,
                   "memory.used": "1024", "memory.total": "12282"}  # fmt: skip


def test_wddm_per_process_memory_na_and_crlf():
    fields = ("pid", "process_name", "used_memory")
    rows = parse_csv(read("compute_apps_wddm_na.txt"), fields)
    assert [(r["pid"], r["used_memory"]) for r in rows] == [("23492", None), ("17676", "15846")]
    assert rows[1]["process_name"] == r"E:\llama\llama-server.exe"


def test_name_with_commas_and_warning_lines():
    text = "WARNING: infoROM is corrupted at gpu 0000:01:00.0\n0, uuid0, Acme, GPU, 1, 2, 3\n"
    (row,) = parse_csv(text, GPU_FIELDS)
    assert row["name"] == "Acme, GPU" and row["utilization.gpu"] == "3"
    assert parse_csv("No devices were found\n", GPU_FIELDS) == []


# ---------------------------------------------------------------- NVML, recorded values


class RecordedNvml:
    """Stands in for ``pynvml`` (NVML cannot run here); returns recorded values.

    Values: two GTX TITAN Z as NVIDIA/DIGITS#497 printed them from NVML (6134 MB total,
    771 MB used, 9 %; 6143 MB, 15 MB, 0 %), a GTX Titan X with one process as gpustat
    showed it (wookayin/gpustat#97: 11848 / 12287 MB, 96 %, python/52046 11821M), and
    a GB10 whose memory query answers NOT_SUPPORTED (leptonai/gpud#1170).
    """

    NVMLError = pynvml.NVMLError

    def __init__(self):
        self.inits = 0
        self.gpus = [
            ("GeForce GTX TITAN Z", (6134, 771), 9, []),
            ("GeForce GTX TITAN Z", (6143, 15), 0, []),
            ("GeForce GTX TITAN X", (12287, 11848), 96, [(52046, 11821 * MIB)]),
            ("NVIDIA GB10", None, 0, [(114687, None)]),
        ]

    def nvmlInit(self):
        self.inits += 1

    def nvmlDeviceGetCount(self):
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index):
        return index

    def nvmlDeviceGetName(self, handle):
        return self.gpus[handle][0].encode()  # older pynvml returns bytes

    def nvmlDeviceGetMemoryInfo(self, handle):
        memory = self.gpus[handle][1]
        if memory is None:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        info = pynvml.c_nvmlMemory_t()
        info.total, info.used = memory[0] * MIB, memory[1] * MIB
        info.free = info.total - info.used
        return info

    def nvmlDeviceGetUtilizationRates(self, handle):
        rates = pynvml.c_nvmlUtilization_t()
        rates.gpu, rates.memory = self.gpus[handle][2], 0
        return rates

    def nvmlDeviceGetComputeRunningProcesses(self, handle):
        # pynvml returns structs with .pid and .usedGpuMemory (bytes; None if unknown)
        return [_Proc(pid, used) for pid, used in self.gpus[handle][3]]


class _Proc:
    def __init__(self, pid, used):
        self.pid, self.usedGpuMemory = pid, used


def test_nvml_recorded_values():
    nvml = RecordedNvml()
    source = NvmlSource(nvml)
    gpus = source.sample()
    assert [g.name for g in gpus][:3] == ["GeForce GTX TITAN Z"] * 2 + ["GeForce GTX TITAN X"]
    assert (gpus[0].memory_used_mib, gpus[0].memory_total_mib) == (771, 6134)
    assert gpus[0].utilization == pytest.approx(0.09)
    assert gpus[2].processes == {52046: 11821}
    gb10 = gpus[3]
    assert (gb10.memory_used_mib, gb10.memory_total_mib) == (None, None)
    assert gb10.processes == {114687: None}
    assert [g.index for g in source.sample([2, 0])] == [2, 0]
    assert nvml.inits == 1  # nvmlInit once per source, not per poll


def test_nvml_rejects_a_missing_index_in_one_line():
    with pytest.raises(GpuUnavailable, match="GPU index 7 does not exist: this machine has 4"):
        NvmlSource(RecordedNvml()).sample([0, 7])


# ---------------------------------------------------------------- choosing a source


def nvml_missing():
    raise pynvml.NVMLError(pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)


def test_neither_source_gives_one_line():
    def no_smi(args):
        raise GpuUnavailable("nvidia-smi is not on PATH")

    with pytest.raises(GpuUnavailable) as err:
        open_gpu_source(nvml_missing, no_smi)
    assert str(err.value) == (
        "no GPU found (NVML: NVML Shared Library Not Found; "
        "nvidia-smi: nvidia-smi is not on PATH); running on CPU slots"
    )


def test_this_machine_has_no_gpu(monkeypatch):
    """The real pynvml and the real PATH lookup, on a machine without a GPU."""
    try:
        pynvml.nvmlInit()
        pytest.skip("this machine has NVML")
    except pynvml.NVMLError:
        pass
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(GpuUnavailable, match=r"NVML: NVML Shared Library Not Found.*not on PATH"):
        open_gpu_source()


@pytest.fixture
def fake_gpus(tmp_path, monkeypatch):
    """tests/fakes/nvidia-smi first on PATH, two fake GPUs of 16384 MiB."""
    monkeypatch.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_GPUS", "2x16384")
    monkeypatch.setenv("FAKE_GPU_STATE", str(tmp_path))
    return tmp_path


def start_sim(gpu, mib, seconds=30.0):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": str(gpu)}
    cmd = [sys.executable, str(FAKES / "fake_gpu_sim.py"), f"--mib={mib}", f"--seconds={seconds}"]
    return subprocess.Popen(cmd, env=env)


def wait_for(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_fallback_to_nvidia_smi_end_to_end(fake_gpus):
    source = open_gpu_source(nvml_loader=nvml_missing)
    assert isinstance(source, SmiSource)
    idle = probe_gpus(source=source)
    assert [(g.index, g.memory_used_mib, g.memory_total_mib) for g in idle] == [
        (0, 0, 16384),
        (1, 0, 16384),
    ]
    sim = start_sim(1, 3000)
    try:
        wait_for(lambda: probe_gpus([1], source)[0].processes)
        (gpu,) = probe_gpus([1], source)
        assert gpu.processes == {sim.pid: 3000}
        assert (gpu.memory_used_mib, gpu.utilization) == (3000, pytest.approx(0.3))
        assert probe_gpus([0], source)[0].processes == {}
    finally:
        sim.kill()
        sim.wait()
    assert probe_gpus([1], source)[0].memory_used_mib == 0  # a dead process holds nothing
    with pytest.raises(GpuUnavailable, match="GPU index 5 does not exist"):
        probe_gpus([5], source)


def test_nvidia_smi_without_gpu_says_so(fake_gpus, monkeypatch):
    monkeypatch.setenv("FAKE_GPUS", "0")
    with pytest.raises(GpuUnavailable, match="nvidia-smi exited with 6: No devices were found"):
        open_gpu_source(nvml_loader=nvml_missing)


def test_a_gpu_search_starts_on_the_poll_that_opened_nvidia_smi(fake_gpus):
    """The poll that showed nvidia-smi lists a GPU is the GPU backend's first sample: the
    caller's thread polls once before the first run, not twice (each poll is two
    nvidia-smi processes, 50-300 ms on a real machine); the sampler thread polls after."""
    from hpsearch.backends.gpus.admission import GpuLimits
    from hpsearch.backends.gpus.backend import GpuBackend

    in_caller: list[bool] = []
    smi = NvidiaSmi()

    def counted(queries):
        in_caller.append(threading.current_thread() is threading.main_thread())
        return smi(queries)

    backend = GpuBackend(open_gpu_source(nvml_missing, counted), GpuLimits(), num_jobs=2,
                         say=lambda _line: None)
    try:
        assert in_caller.count(True) == 1
        assert backend.policy.gpus() == [0, 1]
    finally:
        backend.close()


BOTH_AT_ONCE = """#!/bin/sh
# tests/fakes/nvidia-smi, but each of a poll's two queries waits (20 s at most) for the
# other to have started, and fails if it never does
case "$1" in
    --query-gpu=*) me=gpus other=apps ;;
    *) me=apps other=gpus ;;
esac
: > "$BARRIER_DIR/$me"
i=0
while [ ! -e "$BARRIER_DIR/$other" ]; do
    i=$((i + 1))
    if [ "$i" -gt 400 ]; then echo "the $other query did not run alongside" >&2; exit 9; fi
    sleep 0.05
done
exec "$REAL_SMI" "$@"
"""


def stand_in_nvidia_smi(folder: Path, script: str, monkeypatch: pytest.MonkeyPatch,
                        **env: str) -> None:
    """``script`` as the ``nvidia-smi`` first on ``PATH`` (written into ``folder``), with
    tests/fakes' one as ``$REAL_SMI`` and ``env`` set."""
    folder.mkdir()
    (folder / "nvidia-smi").write_text(script)
    (folder / "nvidia-smi").chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("REAL_SMI", str(FAKES / "nvidia-smi"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def test_the_two_queries_of_an_nvidia_smi_poll_run_at_once(fake_gpus, tmp_path, monkeypatch):
    """A poll's two nvidia-smi calls (GPUs, compute apps) run at the same time, so a poll
    takes one call's time: a stand-in on PATH lets each query answer only once the other
    has started."""
    stand_in_nvidia_smi(tmp_path / "both", BOTH_AT_ONCE, monkeypatch,
                        BARRIER_DIR=str(tmp_path))
    source = open_gpu_source(nvml_loader=nvml_missing)
    assert isinstance(source, SmiSource)
    assert [g.memory_total_mib for g in source.opening[1]] == [16384, 16384]


HANGS_AFTER_OPENING = """#!/bin/sh
# tests/fakes/nvidia-smi for the poll that opens the source (each query once); a later
# query writes its pid to $HANG_DIR/hung.<query> and hangs
case "$1" in
    --query-gpu=*) query=gpus ;;
    *) query=apps ;;
esac
if [ ! -e "$HANG_DIR/answered.$query" ]; then
    : > "$HANG_DIR/answered.$query"
    exec "$REAL_SMI" "$@"
fi
echo $$ > "$HANG_DIR/.hung.$query" && mv "$HANG_DIR/.hung.$query" "$HANG_DIR/hung.$query"
exec sleep 600
"""


def test_closing_the_gpu_backend_kills_an_nvidia_smi_poll_in_flight(fake_gpus, tmp_path,
                                                                    monkeypatch):
    """The driver's end does not wait for the sampler's nvidia-smi poll: close() kills the
    poll in flight (a stand-in on PATH answers the opening poll through tests/fakes and
    hangs on the next; before, close() waited up to 5 s for it and left it running)."""
    from hpsearch.backends.gpus import probe
    from hpsearch.backends.gpus.admission import GpuLimits
    from hpsearch.backends.gpus.backend import GpuBackend

    folder = tmp_path / "hangs"
    stand_in_nvidia_smi(folder, HANGS_AFTER_OPENING, monkeypatch, HANG_DIR=str(folder))
    monkeypatch.setattr(probe, "SMI_TIMEOUT", 600.0)  # only close() may end the poll
    backend = GpuBackend(open_gpu_source(nvml_missing), GpuLimits(), num_jobs=2,
                         say=lambda _line: None)
    hung = [folder / "hung.gpus", folder / "hung.apps"]
    pids: list[int] = []
    try:
        backend.sampler.hurry()
        wait_for(lambda: all(path.exists() for path in hung), timeout=60)
        pids = [int(path.read_text()) for path in hung]
        backend.close()
        assert not backend.sampler.is_alive()
        assert [pid for pid in pids if pid_alive(pid)] == []
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_fields_we_query_are_the_ones_the_fake_answers(fake_gpus):
    out = subprocess.run(
        ["nvidia-smi", f"--query-gpu={','.join(GPU_FIELDS)}", "--format=csv,noheader,nounits"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert (
        out.splitlines()[0] == "0, GPU-fa4e0000-0000-4000-8000-000000000000, Fake GPU, 0, 16384, 0"
    )
