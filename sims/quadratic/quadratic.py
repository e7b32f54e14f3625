"""A tiny deterministic "training run": evaluate a quadratic bowl at (x, y).

Writes ``performance_overview.txt`` into ``--out_dir`` with the keywords the grid module
declares. Stdlib only; ``--sleep`` makes it take a chosen time (for benchmarks).
"""

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--x", type=float, default=0.0)
    parser.add_argument("--y", type=float, default=0.0)
    parser.add_argument("--optimizer", default="sgd")
    parser.add_argument("--momentum", type=float, default=0.0)
    parser.add_argument("--use_bias", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--fail", action="store_true", help="exit with status 3")
    args = parser.parse_args()
    if args.sleep:
        time.sleep(args.sleep)
    if args.fail:
        raise SystemExit(3)
    loss = (args.x - 1.0) ** 2 + 2.0 * (args.y + 0.5) ** 2 + (0.1 if args.use_bias else 0.0)
    loss -= 0.05 * args.momentum if args.optimizer == "momentum" else 0.0
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "performance_overview.txt"), "w") as f:
        f.write(f"loss {loss!r}\n")
        f.write(f"score {-loss!r}\n")
        f.write("finished 1\n")
    print(f"optimizer={args.optimizer} x={args.x} y={args.y} loss={loss}")


if __name__ == "__main__":
    main()
