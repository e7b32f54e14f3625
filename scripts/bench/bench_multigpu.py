"""Benchmark runs of mixed sizes on local GPUs (issue 22): 24 runs on 2 fake GPUs, half of
them 2-GPU runs, interleaved in the queue (1-GPU, 2-GPU, 1-GPU, ...).

No GPU needed: ``tests/fakes/nvidia-smi`` goes first on PATH (``HPSEARCH_NO_NVML=1``) and each
run is ``tests/fakes/fake_gpu_sim.py``, which takes ``--mib`` MiB on each GPU it is given and
holds it for ``--seconds`` (1-GPU runs ``--small`` s, 2-GPU runs ``--large`` s)::

    python scripts/bench/bench_multigpu.py          # target: makespan / ideal <= 1.2

Printed: ``makespan`` (first sim start to last sim end, from the sims' own log), ``ideal``
(the sims' GPU-seconds over the GPUs: no schedule is shorter), their ratio, ``wall`` (the whole
``python -m hpsearch`` process), and ``longest 2-GPU wait``: the longest time a 2-GPU run
started after the run before it in the queue started (the sims log their ``HPSEARCH_TRIAL``;
``--deterministic_search``: trial k is the k-th run of the queue), how long it was held back
while smaller runs went past it. ``--sim_startup_time=0 --allowed_load=1``: the fake sims show
their memory at once, so the start-up gate has nothing to wait for.
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

ROOT = Path(__file__).resolve().parents[2]
FAKES = ROOT / "tests" / "fakes"

GRID = '''grid = {{"job": list(range({runs})), "mib": [{mib}], "seconds": [{small}]}}
conditions = [({{"job": {large_jobs!r}}}, {{"seconds": [{large}]}})]
_SCRIPT_NAME = "fake_gpu_sim.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = ["gpu_mib", "finished"]
_RESOURCES = [{{"when": {{"job": {large_jobs!r}}}, "gpus": 2}}]
'''


def bench(args: argparse.Namespace, folder: Path) -> dict:
    (folder / "state").mkdir(parents=True)
    large_jobs = list(range(1, args.runs, 2))
    grid = folder / "bench_grid.py"
    grid.write_text(GRID.format(runs=args.runs, mib=args.mib, small=args.small,
                                large=args.large, large_jobs=large_jobs))
    log = folder / "fake_gpu.jsonl"
    env = {**os.environ, "PATH": fake_gpu_path(),
           "HPSEARCH_NO_NVML": "1", "FAKE_GPUS": f"2x{args.gpu_mib}",
           "FAKE_GPU_STATE": str(folder / "state"), "FAKE_GPU_LOG": str(log)}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    command = [*HPSEARCH, f"--grid_module={grid}", f"--run_cwd={FAKES}",
               f"--out_dir={folder / 'search'}", "--deterministic_search",
               "--sim_startup_time=0", "--allowed_load=1"]
    begin = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          check=False)
    wall = time.monotonic() - begin
    if done.returncode != 0:
        sys.exit(f"hpsearch exited {done.returncode}:\n{done.stderr}")
    events = [json.loads(line) for line in log.open()]
    starts = {e["pid"]: e for e in events if e["event"] == "start"}
    ends = {e["pid"]: e["t"] for e in events if e["event"] == "end"}
    sims = sorted((e["t"], ends[pid], len(e["gpus"])) for pid, e in starts.items())
    makespan = max(end for _, end, _ in sims) - min(start for start, _, _ in sims)
    ideal = sum((end - start) * gpus for start, end, gpus in sims) / 2
    by_trial = {int(e["trial"]): e["t"] for e in starts.values()}  # trial: queue order
    waits = [by_trial[k] - by_trial[k - 1] for k in large_jobs]
    return {"runs": len(sims), "two_gpu_runs": sum(g == 2 for _, _, g in sims),
            "makespan_s": round(makespan, 2), "ideal_s": round(ideal, 2),
            "ratio": round(makespan / ideal, 3), "wall_s": round(wall, 2),
            "longest_2gpu_wait_s": round(max(waits), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=24)
    parser.add_argument("--small", type=float, default=1.0, help="seconds of a 1-GPU run")
    parser.add_argument("--large", type=float, default=1.0, help="seconds of a 2-GPU run")
    parser.add_argument("--gpu_mib", type=int, default=16384)
    parser.add_argument("--mib", type=int, default=1000, help="GPU memory of a run, per GPU")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_multigpu_") as tmp:
        result = bench(args, Path(tmp))
    print(json.dumps(result))
    ok = result["ratio"] <= 1.2
    print(f"makespan / ideal = {result['ratio']:.3f} (target <= 1.2) "
          f"{'OK' if ok else 'MISSED'}; longest 2-GPU wait {result['longest_2gpu_wait_s']} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
