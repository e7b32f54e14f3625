"""An external generator in iDDS's protocol, for ``algorithm: external``.

    python3 generator.py --in %IN --out %OUT --num %NUM_POINTS --max %MAX_POINTS

Reads ``idds_input.json`` (``{"points": [[point, loss-or-null], ...], "opt_space": ...}``)
and writes ``--num`` new points as a JSON list to ``--out``: the first half random over
``opt_space``, the rest near the best point so far (a step of a tenth of each range); ``[]``
once ``--max`` points exist. Stdlib only: numbers from uniform/uniformint/loguniform
methods, one value of a list.
"""

from __future__ import annotations

import argparse
import json
import math
import random


def draw(spec, rng: random.Random, near=None):
    if isinstance(spec, list):
        return rng.choice(spec) if near is None or rng.random() < 0.3 else near
    low, high = float(spec["low"]), float(spec["high"])
    method = spec["method"]
    if near is not None:
        value = min(high, max(low, near + rng.gauss(0.0, (high - low) / 10)))
    elif method == "loguniform":
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return round(value) if method == "uniformint" else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in", dest="source", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--num", type=int, default=10)
    parser.add_argument("--max", type=int, default=100)
    args = parser.parse_args()
    with open(args.source) as f:
        data = json.load(f)
    points, space = data["points"], data["opt_space"]
    count = min(args.num, args.max - len(points))
    rng = random.Random(len(points))
    scored = [(loss, point) for point, loss in points if loss is not None]
    best = min(scored, key=lambda pair: pair[0])[1] if scored else None
    new = []
    for i in range(max(0, count)):
        near = best if best is not None and i >= count // 2 else None
        new.append({name: draw(spec, rng, None if near is None else near[name])
                    for name, spec in space.items()})
    with open(args.out, "w") as f:
        json.dump(new, f)


if __name__ == "__main__":
    main()
