"""Benchmark local GPU admission on fake GPUs: 12 runs of 0.2 s on 2 GPUs.

No GPU needed: ``tests/fakes/nvidia-smi`` goes first on PATH (NVML is skipped with
``HPSEARCH_NO_NVML=1``) and each run is ``tests/fakes/fake_gpu_sim.py``, which registers
``--mib`` MiB on its GPU right away and holds it for 0.2 s. Two settings::

    python scripts/bench/bench_gpus.py
    # packed:   --max_num_jobs_per_gpu=3 --sim_startup_time=0   target <= 1.5 s
    # defaults: (1 job per GPU, --sim_startup_time=60)         target <= 3 s

hypnettorch took 25.9 s and 316 s for the same two settings (issue 4). Printed per
setting: ``wall`` (the whole ``python -m hpsearch`` process, interpreter start included),
``makespan`` (first run submitted to last run ended, from the journal), and the largest
number of runs at once per GPU (from the sims' own start/end times).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from installed import HPSEARCH, fake_gpu_path

from hpsearch.engine.journal import replay

ROOT = Path(__file__).resolve().parents[2]
FAKES = ROOT / "tests" / "fakes"

GRID = '''grid = {{"mib": [{mib}], "seconds": [{seconds}], "i": list(range({runs}))}}
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

SETTINGS = {
    "packed": (["--max_num_jobs_per_gpu=3", "--sim_startup_time=0"], 1.5),
    "defaults": ([], 3.0),
}


def most_at_once(events: list[dict]) -> dict[int, int]:
    """Largest number of sims alive at once per GPU, from "start"/"end" log lines."""
    best: dict[int, int] = {}
    now: dict[int, int] = {}
    for event in sorted(events, key=lambda e: (e["t"], e["event"] == "start")):
        if event["event"] in ("start", "end"):
            gpu = event["gpu"]
            now[gpu] = now.get(gpu, 0) + (1 if event["event"] == "start" else -1)
            best[gpu] = max(best.get(gpu, 0), now[gpu])
    return best


def bench(name: str, flags: list[str], args: argparse.Namespace, work: Path) -> dict:
    folder = work / name
    (folder / "state").mkdir(parents=True)
    grid = folder / "bench_grid.py"
    grid.write_text(GRID.format(mib=args.mib, seconds=args.seconds, runs=args.runs))
    log = folder / "fake_gpu.jsonl"
    env = {**os.environ, "PATH": fake_gpu_path(),
           "HPSEARCH_NO_NVML": "1", "FAKE_GPUS": f"{args.gpus}x{args.gpu_mib}",
           "FAKE_GPU_STATE": str(folder / "state"), "FAKE_GPU_LOG": str(log)}
    command = [*HPSEARCH, f"--grid_module={grid}",
               f"--run_cwd={FAKES}", f"--out_dir={folder / 'search'}", *flags]
    begin = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.monotonic() - begin
    if done.returncode != 0:
        sys.exit(f"{name}: hpsearch exited {done.returncode}:\n{done.stderr}")
    runs = list(replay(folder / "search" / "journal.jsonl").runs.values())  # compacted
    submits = [r.submitted_at for r in runs if r.submitted_at is not None]
    ends = [r.ended_at for r in runs if r.ended_at is not None]
    events = [json.loads(line) for line in log.open()]
    return {"setting": name, "flags": " ".join(flags) or "(defaults)", "wall_s": round(wall, 2),
            "makespan_s": round(max(ends) - min(submits), 2),
            "finished": sum(r.status == "finished" for r in runs),
            "most_at_once_per_gpu": most_at_once(events),
            "ooms": sum(e["event"] == "oom" for e in events)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=0.2)
    parser.add_argument("--gpus", type=int, default=2)
    parser.add_argument("--gpu_mib", type=int, default=16384)
    parser.add_argument("--mib", type=int, default=1000, help="GPU memory of one run")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each setting")
    parser.add_argument("--preload", action="store_true",
                        help="fork the sims from a zygote that imported them (--preload)")
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory(prefix="bench_gpus_") as tmp:
        for name, (flags, target) in SETTINGS.items():
            flags = [*flags, *(["--preload"] if args.preload else [])]
            results = [bench(f"{name}{i}", flags, args, Path(tmp)) for i in range(args.repeat)]
            for result in results:
                print(json.dumps(result))
            best = min(r["wall_s"] for r in results)
            ok = best <= target and all(r["finished"] == args.runs for r in results)
            failed |= not ok
            print(f"{name}: best wall {best:.2f} s (target <= {target} s) "
                  f"{'OK' if ok else 'MISSED'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
