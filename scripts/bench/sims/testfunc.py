"""A benchmark sim: evaluates a published test function at --x1 --x2 [--x3] and writes
``value <v>`` and ``finished 1`` into ``<out_dir>/summary.txt``. Standard library only.

    python testfunc.py --function=branin --x1=-3.1 --x2=12.2 --out_dir=DIR
"""

from __future__ import annotations

import math
import os
import sys


def branin(x: list[float]) -> float:
    """Branin-Hoo on [-5, 10] x [0, 15]; minimum 0.397887 at three points."""
    x1, x2 = x
    b, c = 5.1 / (4 * math.pi ** 2), 5 / math.pi
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x1) + 10


_H3_A = [[3.0, 10, 30], [0.1, 10, 35], [3.0, 10, 30], [0.1, 10, 35]]
_H3_P = [[0.3689, 0.1170, 0.2673], [0.4699, 0.4387, 0.7470], [0.1091, 0.8732, 0.5547],
         [0.0381, 0.5743, 0.8828]]
_H3_ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann3(x: list[float]) -> float:
    """Hartmann-3 on [0, 1]^3; minimum -3.86278."""
    total = 0.0
    for alpha, row, prow in zip(_H3_ALPHA, _H3_A, _H3_P, strict=True):
        total += alpha * math.exp(-sum(a * (xj - p) ** 2
                                       for a, xj, p in zip(row, x, prow, strict=True)))
    return -total


FUNCTIONS = {"branin": (branin, {"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}, 0.397887),
             "hartmann3": (hartmann3, {"x1": (0.0, 1.0), "x2": (0.0, 1.0), "x3": (0.0, 1.0)},
                           -3.86278)}


def main() -> None:
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:] if a.startswith("--"))
    function, bounds, _ = FUNCTIONS[args["function"]]
    value = function([float(args[name]) for name in bounds])
    os.makedirs(args["out_dir"], exist_ok=True)
    with open(os.path.join(args["out_dir"], "summary.txt"), "w") as f:
        f.write(f"value {value!r}\nfinished 1\n")


if __name__ == "__main__":
    main()
