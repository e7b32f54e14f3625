"""Benchmark ``hpsearch serve``: points handed out and losses taken per second, 8 workers.

    python scripts/bench/bench_serve.py [--points 1000] [--workers 8] [--algorithms random,tpe]
                                        [--runs 3] [--pin] [--dir /dev/shm]

For each algorithm a fresh service (``--port=0``, a temporary search directory) serves a
search of ``--points`` points over three parameters (the workers send the token it printed,
as ``HPSEARCH_TOKEN``); ``--workers`` processes each loop
``GET /requests/1/points?status=new&limit=1`` (``--limit``) then ``PUT
/requests/1/points/<id>`` for each point, with the stdlib client (one kept-alive
connection per worker) and no training time, until the request is done. A worker that
finds no new point asks ``GET /requests/1`` whether the request is done, then backs off
(1 ms, doubling up to 50 ms), as ``sims/served/worker.py`` does. Printed per run::

    random 1000 points, 8 workers, limit 1: 412.3 points/s (2.43 s); GET p50 ..., p99 ...;
      PUT p50 ..., p99 ...; requests 2010 (empty answers 5); service CPU 1.21 s = 1.21 ms
      a point (user 0.98, sys 0.23) -> service-bound 826 points/s; workers' CPU 2.10 s

points per second (points over the wall time from the first call to the last report), the
latency of the two calls (p50, p99, max), every request the workers made and how many
found no new point, the CPU the service used while the workers ran (its start-up and
first generation not counted) and per point, and the *service-bound* rate: points over
that CPU, what the service sustains where the workers do not share its cores (on a small
machine the workers' CPU comes out of the same cores). With ``--runs N`` each algorithm
runs N times, then a line gives the min and median of both rates. ``--pin`` runs the
service on the last CPU and the workers on the others (a core of its own, as where the
targets hold); ``--dir`` puts the search directories there instead of the system's
temporary folder (``/dev/shm``: the service without the disk's cost of creating a point's
files). The directories are deleted when every run is done (a deletion slows the next
run's file creation on some filesystems: keep a pause between two invocations).
Targets (issue 13): >= 500 points/s for random, >= 50/s for tpe at 1000 points.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from installed import HPSEARCH

SEARCH = """
algorithm: {algorithm}
num_trials: {points}
seed: 1
parameters:
  x: {{method: uniform, low: -2.0, high: 2.0}}
  lr: {{method: loguniform, low: 1.0e-5, high: 0.1}}
  layers: [1, 2, 3, 4]
"""


def work(url: str, out: str, limit: int) -> None:
    """One worker: lease, report, until done; latencies (seconds) to ``out`` as JSON (the
    token from ``HPSEARCH_TOKEN``)."""
    from hpsearch.client import Client

    client = Client(url)
    gets, puts, empty, idle = [], [], 0, 0.001
    while True:
        t0 = time.perf_counter()
        points = client.get_points(1, status="new", limit=limit)
        t1 = time.perf_counter()
        if not points:  # the strategy has not caught up: back off as sims/served/worker.py
            empty += 1
            if client.status(1)["done"]:
                break
            time.sleep(idle)
            idle = min(0.05, idle * 2)
            continue
        idle = 0.001
        gets.append(t1 - t0)
        for point in points:
            t1, p = time.perf_counter(), point["params"]
            client.update_point(1, point["id"], (p["x"] - 0.3) ** 2 + p["layers"] * p["lr"])
            puts.append(time.perf_counter() - t1)
    Path(out).write_text(json.dumps({"get": gets, "put": puts, "empty": empty}))


def service_cpu(pid: int) -> tuple[float, float]:
    """CPU seconds (user, system) the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def workers_cpu() -> float:
    """CPU seconds of the children waited for so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def quantiles(values: list[float]) -> str:
    values = sorted(values)
    p50 = statistics.median(values)
    p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
    return f"p50 {p50 * 1e3:.1f} ms, p99 {p99 * 1e3:.1f} ms, max {values[-1] * 1e3:.1f} ms"


def first_output(service: subprocess.Popen[bytes], timeout: float) -> tuple[str, str]:
    """The URL and the token the service prints first (together, in one write)."""
    assert service.stdout is not None
    ready, _, _ = select.select([service.stdout], [], [], timeout)
    lines = os.read(service.stdout.fileno(), 65536).decode().splitlines() if ready else []
    assert lines and lines[0].startswith("http://"), "the service printed no URL"
    tokens = [line.removeprefix("token: ") for line in lines if line.startswith("token: ")]
    assert tokens, "the service printed no token"
    return lines[0], tokens[0]


def pinned(cpus: set[int] | None) -> dict[str, Any]:
    """Popen's arguments that start a process on ``cpus`` (None: anywhere)."""
    return {} if cpus is None else {"preexec_fn": lambda: os.sched_setaffinity(0, cpus)}


def bench(algorithm: str, points: int, workers: int, ahead: int, limit: int,
          pin: tuple[set[int], set[int]] | None, folder: Path) -> tuple[float, float]:
    """One run in ``folder`` (made here), the service and the workers on the CPUs of
    ``pin``; prints its line, returns (points/s, service-bound points/s)."""
    service_cpus, worker_cpus = pin or (None, None)
    folder.mkdir()
    search = folder / "search.yaml"
    search.write_text(SEARCH.format(algorithm=algorithm, points=points))
    service = subprocess.Popen(
        [*HPSEARCH, "serve", f"--search_file={search}",
         f"--out_dir={folder / 'out'}", "--port=0",
         f"--num_points_per_generation={ahead}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, **pinned(service_cpus))
    try:
        url, token = first_output(service, 60)
        time.sleep(1.0)  # let the first generation fill the pool
        start, before, (user0, sys0) = time.perf_counter(), workers_cpu(), \
            service_cpu(service.pid)
        env = {**os.environ, "HPSEARCH_TOKEN": token}
        procs = [subprocess.Popen([sys.executable, __file__, "--work", url,
                                   str(folder / f"w{i}.json"), str(limit)],
                                  env=env, **pinned(worker_cpus))
                 for i in range(workers)]
        for proc in procs:
            proc.wait()
        wall = time.perf_counter() - start
        user1, sys1 = service_cpu(service.pid)
        spent = workers_cpu() - before
        data = [json.loads((folder / f"w{i}.json").read_text()) for i in range(workers)]
    finally:
        service.terminate()
        service.wait(60)
    gets = [v for d in data for v in d["get"]]
    puts = [v for d in data for v in d["put"]]
    empty = sum(d["empty"] for d in data)
    user, system = user1 - user0, sys1 - sys0
    cpu = user + system
    rate, bound = len(puts) / wall, len(puts) / cpu
    print(f"{algorithm:6} {points} points, {workers} workers, limit {limit}: "
          f"{rate:7.1f} points/s ({wall:.2f} s); GET {quantiles(gets)}; "
          f"PUT {quantiles(puts)}; requests {len(gets) + len(puts) + 2 * empty} "
          f"(empty answers {empty}); service CPU {cpu:.2f} s = {cpu / len(puts) * 1e3:.2f} "
          f"ms a point (user {user:.2f}, sys {system:.2f}) -> service-bound {bound:.0f} "
          f"points/s; workers' CPU {spent:.2f} s", flush=True)
    return rate, bound


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--work":
        work(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--ahead", type=int, default=16,
                        help="--num_points_per_generation of the service")
    parser.add_argument("--limit", type=int, default=1,
                        help="points a worker asks for at once (it reports each)")
    parser.add_argument("--algorithms", default="random,tpe")
    parser.add_argument("--runs", type=int, default=1, help="runs of each algorithm")
    parser.add_argument("--pin", action="store_true",
                        help="the service on the last CPU, the workers on the others")
    parser.add_argument("--dir", default=None,
                        help="where the search directory goes (default: the temporary folder)")
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.pin and len(cpus) < 2:
        sys.exit("--pin needs two CPUs or more")
    pin = ({cpus[-1]}, set(cpus[:-1])) if args.pin else None
    # every run's search directory is deleted at the end, not before the next run: ext4
    # without a journal (this machine's disk) skips the inodes freed in the last seconds
    # when it allocates one, and a run right after the deletion of 7 000 files spent up to
    # 6 times the kernel time of one after a pause
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for algorithm in args.algorithms.split(","):
            rates = [bench(algorithm, args.points, args.workers, args.ahead, args.limit,
                           pin, Path(tmp) / f"{algorithm}{run}") for run in range(args.runs)]
            if args.runs > 1:
                points_s, bound = ([r[i] for r in rates] for i in (0, 1))
                print(f"{algorithm:6} {args.runs} runs: points/s min {min(points_s):.1f}, "
                      f"median {statistics.median(points_s):.1f}; service-bound min "
                      f"{min(bound):.0f}, median {statistics.median(bound):.0f}", flush=True)


if __name__ == "__main__":
    main()
