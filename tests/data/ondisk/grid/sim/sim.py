"""The sim of the on-disk compatibility data (standard library only).

Appends its start to ``starts.jsonl`` in its working directory (``--run_cwd``, this folder),
so a test can tell which configurations ran again. While a file ``HOLD`` exists here, a run
with ``x >= 3`` waits (at most 120 s): ``make.py`` uses it to kill the search half way.
Writes ``perf.txt`` with ``loss = (x - 2)**2 + y`` and ``finished 1``.
"""

import argparse
import json
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--x", type=int, required=True)
    parser.add_argument("--y", type=int, required=True)
    args = parser.parse_args()
    with open("starts.jsonl", "a") as f:
        f.write(json.dumps({"x": args.x, "y": args.y, "pid": os.getpid()}) + "\n")
    give_up = time.monotonic() + 120
    while args.x >= 3 and os.path.exists("HOLD") and time.monotonic() < give_up:
        time.sleep(0.05)
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "perf.txt"), "w") as f:
        f.write(f"loss {(args.x - 2) ** 2 + args.y}\nfinished 1\n")


if __name__ == "__main__":
    main()
