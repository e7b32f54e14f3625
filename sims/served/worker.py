"""An external worker: pull points from ``hpsearch serve``, "train", report the loss.

    python sims/served/worker.py http://127.0.0.1:8787 --token-file out/svc/service.token

The token comes from ``--token-file`` (the service writes ``<out_dir>/service.token``) or
the environment variable ``HPSEARCH_TOKEN``; ``--request N`` works on request N (default 1).

It asks for one new point at a time, computes Rosenbrock's function at (x, y) (plus 0.1
for ``optimizer=sgd``) as the "training", and reports it; it stops when the request says
``done`` (no point will come any more). Stdlib and ``hpsearch.client`` only. Flags for the
tests: ``--fail-every N`` reports every N-th point as failed, ``--die-holding`` leases one
point and exits without reporting it (a crashed worker), ``--log F`` appends one JSON line
per point it got (``{"id": 3, "loss": 1.2}``), ``--sleep S`` trains S seconds a point.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from hpsearch.client import Client


def train(params: dict) -> float:
    x, y = float(params.get("x", 0.0)), float(params.get("y", 0.0))
    loss = (1.0 - x) ** 2 + 100.0 * (y - x * x) ** 2
    return loss + (0.1 if params.get("optimizer") == "sgd" else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--request", type=int, default=1)
    parser.add_argument("--token-file", default=None)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--die-holding", action="store_true")
    parser.add_argument("--log", default=None)
    args = parser.parse_args()
    client = Client(args.url, token_file=args.token_file)
    done = 0
    idle = 0.01
    while True:
        points = client.get_points(args.request, status="new", limit=1)
        if not points:
            if client.status(args.request)["done"]:
                print(f"worker {os.getpid()}: {done} point(s), request done")
                return 0
            time.sleep(idle)
            idle = min(0.5, idle * 2)  # the generator or sampler is still working
            continue
        idle = 0.01
        point = points[0]
        if args.die_holding:
            print(f"worker {os.getpid()}: dying with point {point['id']}", flush=True)
            os._exit(1)
        time.sleep(args.sleep)
        done += 1
        if args.fail_every and done % args.fail_every == 0:
            loss = None
            client.update_point(args.request, point["id"], {"failure": "diverged (test)"})
        else:
            loss = train(point["params"])
            client.update_point(args.request, point["id"], loss)
        if args.log:
            with open(args.log, "a") as f:
                f.write(json.dumps({"id": point["id"], "loss": loss, "pid": os.getpid()}) + "\n")


if __name__ == "__main__":
    sys.exit(main())
