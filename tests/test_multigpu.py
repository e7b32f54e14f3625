"""Resources per run (issue 22, item 1), end to end through ``python -m hpsearch``: runs of
several GPUs on local GPUs, runs of several CPUs on CPU slots, and the declarations' bad inputs.

Fakes, because no GPU can run here: ``tests/fakes/nvidia-smi`` goes first on PATH and
``HPSEARCH_NO_NVML=1`` makes hpsearch read it (the real tool's CSV); each run is
``tests/fakes/fake_gpu_sim.py``, which takes ``--mib`` MiB on each GPU its
``CUDA_VISIBLE_DEVICES`` lists (as a data-parallel run does) and logs its start and end.
The real parts: the driver, the declarations, the GPU backend, its sampler, the admission,
real processes.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FAKES = Path(__file__).resolve().parent / "fakes"
ROOT = FAKES.parents[1]

GRID = '''grid = {grid!r}
conditions = {conditions!r}
_SCRIPT_NAME = "fake_gpu_sim.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = ["gpu_mib", "finished"]
_RESOURCES = {resources!r}
'''


def search(tmp_path: Path, grid: dict, resources, *flags: str, conditions=(),
           gpus: str = "2x8192") -> tuple[subprocess.CompletedProcess, list[dict]]:
    """Run a grid search of the fake sim on fake GPUs ``gpus``; its result and the sims' log
    (``start``/``end`` events with ``gpus``)."""
    (tmp_path / "state").mkdir()
    log = tmp_path / "fake_gpu.jsonl"
    module = tmp_path / "gpu_grid.py"
    module.write_text(GRID.format(grid=grid, conditions=list(conditions), resources=resources))
    env = {**os.environ, "PATH": f"{FAKES}{os.pathsep}{os.environ['PATH']}",
           "HPSEARCH_NO_NVML": "1", "FAKE_GPUS": gpus,
           "FAKE_GPU_STATE": str(tmp_path / "state"), "FAKE_GPU_LOG": str(log)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    done = subprocess.run(
        [sys.executable, "-m", "hpsearch", f"--grid_module={module}", f"--run_cwd={FAKES}",
         f"--out_dir={tmp_path / 'search'}", "--deterministic_search", "--sim_startup_time=0",
         "--allowed_load=1", *flags],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    events = [json.loads(line) for line in log.open()] if log.exists() else []
    return done, events


def spans(events: list[dict]) -> dict[int, tuple[float, float, list[int]]]:
    """pid -> (start, end, GPUs) of every sim."""
    starts = {e["pid"]: e for e in events if e["event"] == "start"}
    ends = {e["pid"]: e["t"] for e in events if e["event"] == "end"}
    return {pid: (e["t"], ends[pid], e["gpus"]) for pid, e in starts.items()}


def results(tmp_path: Path) -> list[dict]:
    with open(tmp_path / "search" / "search_results.csv") as f:
        return list(csv.DictReader(f, delimiter=";"))


def test_a_two_gpu_run_gets_two_gpus_that_each_admit_it(tmp_path):
    """A rule gives the ``large`` runs 2 GPUs: each starts with CUDA_VISIBLE_DEVICES listing
    both GPUs, only while no other run holds either (--max_num_jobs_per_gpu=1), and its
    ``gpu`` column says ``0,1``; the small runs take one GPU each."""
    done, events = search(
        tmp_path, {"size": ["small", "large"], "i": [0, 1, 2], "seconds": [0.4]},
        [{"when": {"size": "large"}, "gpus": 2}, {"gpus": 1}])
    assert done.returncode == 0, done.stderr
    sims = spans(events)
    assert sorted(len(g) for _, _, g in sims.values()) == [1, 1, 1, 2, 2, 2]
    for pid, (start, end, gpus) in sims.items():
        if len(gpus) == 2:
            assert gpus == [0, 1]
            overlapping = [p for p, (s, e, _) in sims.items()
                           if p != pid and s < end and e > start]
            assert overlapping == [], "a run shared a GPU with a 2-GPU run"
    rows = results(tmp_path)
    assert {(r["size"], r["gpu"]) for r in rows} >= {("large", "0,1")}
    assert {r["gpu"] for r in rows if r["size"] == "small"} <= {"0", "1"}
    assert {r["status"] for r in rows} == {"finished"}


def test_a_large_run_does_not_starve_behind_small_ones(tmp_path):
    """Job 1 needs 2 GPUs; the other 14 need one each and, with staggered durations, keep at
    least one GPU busy all the time. Job 1 still starts while small runs are left: once it
    waited longer than the median duration of the runs started meanwhile, the small runs stop
    taking the GPUs it needs. Without that rule it would start only after every small run
    started (when the queue drains)."""
    jobs = list(range(15))
    done, events = search(
        tmp_path, {"job": jobs, "seconds": [0.5]}, [{"when": {"job": 1}, "gpus": 2}],
        conditions=[({"job": [0, 3, 5, 8, 10, 12, 14]}, {"seconds": [1.1]})])
    assert done.returncode == 0, done.stderr
    sims = sorted(spans(events).values())
    large = next(i for i, (_, _, gpus) in enumerate(sims) if len(gpus) == 2)
    assert large < len(sims) - 3, f"the 2-GPU run started as number {large + 1} of 15"


def test_runs_of_several_cpus_take_as_many_slots(tmp_path):
    """On 3 CPU slots (--visible_gpus=-1 --num_jobs=3), runs of cpus: 2 and of 1 CPU never
    hold more than 3 CPUs at once, and a 2-CPU run's job records 2 CPUs (its cpu_hours)."""
    sim = tmp_path / "sim.py"
    sim.write_text(textwrap.dedent('''
        import argparse, os, time
        p = argparse.ArgumentParser()
        p.add_argument("--out_dir"); p.add_argument("--big"); p.add_argument("--i")
        a = p.parse_args()
        t0 = time.time(); time.sleep(0.5); t1 = time.time()
        os.makedirs(a.out_dir, exist_ok=True)
        with open(os.path.join(a.out_dir, "performance_overview.txt"), "w") as f:
            f.write(f"t0 {t0}\\nt1 {t1}\\nfinished 1\\n")
    '''))
    (tmp_path / "search.yaml").write_text(textwrap.dedent('''
        script: sim.py
        metrics: [t0, t1]
        parameters: {big: [0, 1], i: [0, 1, 2, 3]}
        resources:
          - {when: {big: 1}, cpus: 2}
    '''))
    env = {**os.environ}
    done = subprocess.run(
        [sys.executable, "-m", "hpsearch", f"--search_file={tmp_path / 'search.yaml'}",
         f"--run_cwd={tmp_path}", f"--out_dir={tmp_path / 'search'}", "--visible_gpus=-1",
         "--num_jobs=3"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        check=False)
    assert done.returncode == 0, done.stderr
    rows = results(tmp_path)
    held = [(float(r["t0"]), float(r["t1"]), 2 if r["big"] == "1" else 1) for r in rows]
    for start, _end, _cpus in held:
        at_once = sum(c for s, e, c in held if s <= start < e)
        assert at_once <= 3, held
    assert any(sum(1 for s, e, c in held if s <= start < e) >= 2 for start, _, _ in held)


@pytest.mark.parametrize(("resources", "flags", "words"), [
    ([{"when": {"modle": "large"}, "gpus": 2}], (), "when names 'modle'"),
    ({"gpus": 3}, (), "3 GPUs per run, but this machine lets the search use 2 GPUs"),
    ({"gpus": 1}, ("--gpus_per_run=4",), "4 GPUs per run"),
    ({"gpus": "two"}, (), "gpus must be a whole number >= 0"),
    ({"mem": "lots"}, (), "mem='lots' is not an amount of memory"),
    ({"cpus": 1, "disk": 3}, (), "unknown key 'disk'"),
    ({"cpus": 4}, ("--visible_gpus=-1", "--num_jobs=2"), "4 CPUs per run, but the search has 2"),
], ids=["unknown_parameter", "more_gpus_than_machine", "flag_over_machine", "not_a_count",
        "bad_memory", "unknown_key", "more_cpus_than_slots"])
def test_resources_nothing_can_satisfy_are_one_line_before_anything_runs(
        tmp_path, resources, flags, words):
    """Each bad declaration: one line naming it, exit 2, no traceback, no search directory
    written, no run started."""
    done, events = search(tmp_path, {"size": ["small", "large"]}, resources, *flags)
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "search").exists()
    assert [e for e in events if e["event"] == "start"] == []


def test_gpus_per_run_gives_every_run_that_many_gpus_over_the_rules(tmp_path):
    """--gpus_per_run=2 wins over a rule's ``gpus: 1``: every run gets both GPUs, one after
    the other."""
    done, events = search(tmp_path, {"i": [0, 1, 2], "seconds": [0.2]}, {"gpus": 1},
                          "--gpus_per_run=2")
    assert done.returncode == 0, done.stderr
    sims = sorted(spans(events).values())
    assert [gpus for _, _, gpus in sims] == [[0, 1]] * 3
    assert all(end <= later for (_, end, _), (later, _, _) in itertools.pairwise(sims))
