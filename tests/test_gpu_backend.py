"""End to end: ``python -m hpsearch`` on fake GPUs (this machine has none).

Fakes, because no GPU can run here: ``tests/fakes/nvidia-smi`` goes first on PATH and
``HPSEARCH_NO_NVML=1`` makes hpsearch read it rather than NVML; each run is
``tests/fakes/fake_gpu_sim.py``, which takes ``--mib`` MiB on the GPU its
``CUDA_VISIBLE_DEVICES`` names (or fails with ``CUDA out of memory`` when it does not fit)
and logs every allocation, every answer of the fake ``nvidia-smi`` and its own start and
end to ``FAKE_GPU_LOG``. The real parts: the driver, the GPU backend, its sampler, the
per-process -> run mapping through session ids, the admission policy.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hpsearch.engine.journal import replay

FAKES = Path(__file__).resolve().parent / "fakes"
ROOT = FAKES.parents[1]

GRID = '''grid = {grid!r}
conditions = []
_SCRIPT_NAME = "fake_gpu_sim.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = ["gpu_mib", "finished"]
_OUT_ARG = "out_dir"
_SUMMARY_PARSER_HANDLE = None
_PERFORMANCE_KEY = "gpu_mib"
_PERFORMANCE_SORT_ASC = True
_PERFORMANCE_EVAL_HANDLE = None
_ARGPARSE_HANDLE = None
'''


class Search:
    def __init__(self, tmp_path: Path, gpus: str, grid: dict, *flags: str,
                 hpsearch: tuple[str, ...] = (sys.executable, "-m", "hpsearch")) -> None:
        """``hpsearch``: the command that runs the CLI (the flags follow it)."""
        (tmp_path / "state").mkdir()
        self.out = tmp_path / "search"
        self.log = tmp_path / "fake_gpu.jsonl"
        module = tmp_path / "gpu_grid.py"
        module.write_text(GRID.format(grid=grid))
        env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
               "HPSEARCH_NO_NVML": "1", "FAKE_GPUS": gpus,
               "FAKE_GPU_STATE": str(tmp_path / "state"), "FAKE_GPU_LOG": str(self.log)}
        env.pop("CUDA_VISIBLE_DEVICES", None)
        self.done = subprocess.run(
            [*hpsearch, f"--grid_module={module}",
             f"--run_cwd={FAKES}", f"--out_dir={self.out}", "--deterministic_search", *flags],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)

    def events(self, kind: str) -> list[dict]:
        if not self.log.exists():
            return []
        return [e for e in map(json.loads, self.log.open()) if e["event"] == kind]

    def states(self) -> list:
        """Every run as the journal (compacted when the search ended) says it ended."""
        return list(replay(self.out / "journal.jsonl").runs.values())

    def results(self) -> list[dict]:
        with open(self.out / "search_results.csv") as f:
            return list(csv.DictReader(f, delimiter=";"))

    def most_at_once(self) -> dict[int, int]:
        """Most sims alive at once per GPU, from the sims' own start/end times."""
        moments = sorted((e["t"], e["event"] == "start", e["gpu"])
                         for e in self.events("start") + self.events("end"))
        now: dict[int, int] = {}
        best: dict[int, int] = {}
        for _t, started, gpu in moments:
            now[gpu] = now.get(gpu, 0) + (1 if started else -1)
            best[gpu] = max(best.get(gpu, 0), now[gpu])
        return best


def test_declared_need_keeps_every_gpu_within_allowed_memory(tmp_path):
    # 2 GPUs of 8192 MiB, 80 % allowed = 6553 MiB: two 3000 MiB runs per GPU, never three,
    # although --max_num_jobs_per_gpu=4 and a single snapshot shows the GPUs empty.
    search = Search(tmp_path, "2x8192", {"mib": [3000], "delay": [0.3], "seconds": [0.3],
                                          "i": list(range(8))},
                    "--gpu_memory_per_run=3000MiB", "--allowed_memory=0.8",
                    "--max_num_jobs_per_gpu=4", "--sim_startup_time=0", "--allowed_load=1")
    assert search.done.returncode == 0, search.done.stderr
    assert search.events("oom") == []
    assert len(search.events("alloc")) == 8
    for alloc in search.events("alloc"):
        assert alloc["used"] <= 0.8 * alloc["total"], alloc
    samples = search.events("sample")
    assert len(samples) >= 2
    for sample in samples:
        for gpu in sample["gpus"]:
            assert gpu["used"] <= 0.8 * gpu["total"], sample
    assert search.most_at_once() == {0: 2, 1: 2}
    rows = search.results()
    assert len(rows) == 8 and {row["status"] for row in rows} == {"finished"}
    assert {row["gpu"] for row in rows} == {"0", "1"}


def test_without_a_reservation_a_single_snapshot_lets_a_burst_through(tmp_path):
    # The same search with no declared need and nothing learned yet: the empty snapshot
    # admits 4 runs per GPU at once, 12000 MiB on 8192 MiB GPUs -> out of memory. This is
    # the burst the reservation above prevents.
    search = Search(tmp_path, "2x8192", {"mib": [3000], "delay": [0.3], "seconds": [0.3],
                                          "i": list(range(8))},
                    "--allowed_memory=0.8", "--max_num_jobs_per_gpu=4",
                    "--sim_startup_time=0", "--allowed_load=1")
    assert search.done.returncode == 1
    assert search.events("oom")
    assert max(search.most_at_once().values()) >= 3


def test_jobs_per_gpu_cap_holds(tmp_path):
    search = Search(tmp_path, "2x16384", {"mib": [500], "seconds": [0.3],
                                           "i": list(range(8))},
                    "--max_num_jobs_per_gpu=2", "--sim_startup_time=0", "--allowed_load=1")
    assert search.done.returncode == 0, search.done.stderr
    assert search.most_at_once() == {0: 2, 1: 2}
    runs = {s.run_id: s.extra["gpu"] for s in search.states()}
    assert sorted(runs.values()).count(0) + sorted(runs.values()).count(1) == 8


def test_startup_gate_lifts_once_the_run_memory_shows(tmp_path):
    # Default --sim_startup_time=60: the second run may start on the same GPU as soon as
    # the fake nvidia-smi lists the first run's process (a child of our wrapper, matched
    # by session id), long before 60 s.
    search = Search(tmp_path, "1x16384", {"mib": [500], "seconds": [1.5], "i": [0, 1]},
                    "--max_num_jobs_per_gpu=2", "--allowed_load=1")
    assert search.done.returncode == 0, search.done.stderr
    assert search.most_at_once() == {0: 2}
    starts = sorted(e["t"] for e in search.events("start"))
    assert starts[1] - starts[0] < 1.5


def test_out_of_memory_run_is_retried_with_a_larger_reservation(tmp_path):
    # Two 5000 MiB runs burst onto one 8192 MiB GPU (nothing known yet): the second to
    # allocate gets CUDA out of memory. Its retry reserves more and waits for room.
    search = Search(tmp_path, "1x8192", {"mib": [5000], "delay": [0.2], "seconds": [0.5],
                                          "i": [0, 1]},
                    "--max_num_jobs_per_gpu=2", "--sim_startup_time=0", "--allowed_load=1",
                    "--allowed_memory=1", "--retries=1")
    assert search.done.returncode == 0, search.done.stderr
    assert len(search.events("oom")) == 1
    (retried,) = [s for s in search.states() if s.attempts == 2]
    first = search.out / "runs" / retried.run_id / "attempts" / "1"
    assert "CUDA out of memory" in (first / "stderr.log").read_text()
    assert "failed: oom (" in search.done.stderr
    assert "its retry reserves" in search.done.stderr
    rows = search.results()
    assert {row["status"] for row in rows} == {"finished"}
    assert sorted(row["attempts"] for row in rows) == ["1", "2"]
    assert search.most_at_once() == {0: 2}  # the burst; the retry ran alone


@pytest.mark.parametrize("flag, words", [
    ("--gpu_memory_per_run=20GiB", "--gpu_memory_per_run=20GiB is more than"),
    ("--gpu_memory_per_run=lots", "is not a size"),
    ("--visible_gpus=3", "GPU 3 does not exist"),
    ("--visible_gpus=a,b", "is not a list of GPU indices"),
])
def test_bad_gpu_flags_are_one_line_usage_errors(tmp_path, flag, words):
    search = Search(tmp_path, "2x16384", {"i": [0]}, flag)
    assert search.done.returncode == 2
    lines = search.done.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0], lines
    assert not search.out.exists()


def test_no_gpu_says_so_and_uses_cpu_slots(tmp_path):
    search = Search(tmp_path, "0", {"i": [0]})
    assert "no GPU found" in search.done.stderr
    assert "nvidia-smi: nvidia-smi exited with 6: No devices were found" in search.done.stderr
    assert [s.attempts for s in search.states()] == [1]  # the run was started, without a GPU
    assert "No CUDA GPUs are available" in search.done.stderr or search.done.returncode == 1


#: runs the CLI in-process with the flags that follow, then prints the modules it loaded
LOADED = ("import json, sys\n"
          "from hpsearch.cli import main\n"
          "status = main(sys.argv[1:])\n"
          "print(json.dumps(sorted(sys.modules)))\n"
          "sys.exit(status)\n")


def test_a_grid_module_search_on_gpus_loads_no_yaml_ssh_or_cluster_code(tmp_path):
    """The driver's start imports what the search uses: a grid module on local GPUs reads
    no YAML (PyYAML is for search files and config templates) and builds no SSH or cluster
    backend, so their modules stay unloaded (imports are most of the driver's start)."""
    search = Search(tmp_path, "2x16384", {"i": [0, 1]},
                    hpsearch=(sys.executable, "-P", "-c", LOADED))
    assert search.done.returncode == 0, search.done.stderr
    loaded = set(json.loads(search.done.stdout.splitlines()[-1]))
    assert "hpsearch.engine.driver" in loaded  # the search ran here
    assert loaded & {"yaml", "hpsearch.backends.ssh.backend",
                     "hpsearch.backends.cluster.backend"} == set()
    assert {s.status for s in search.states()} == {"finished"}
