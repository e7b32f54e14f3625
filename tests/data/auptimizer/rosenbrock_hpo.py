#!/usr/bin/env python
"""A two-dimensional function run as Auptimizer runs its examples: ``rosenbrock_hpo.py
<config.json>``. It reports what ``aup.print_result`` writes (``#Auptimizer:<value>`` on
stderr), written out here so that the tests need no ``aup`` package: two intermediate
results, then the result. ``mode`` in the config (when a search sets it) makes it fail."""

import json
import sys


def print_result(value):
    """What aup.print_result writes: a list joined by commas."""
    text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
    print(f"#Auptimizer:{text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("config file required")
        sys.exit(1)
    with open(sys.argv[1]) as f:
        config = json.load(f)
    if config.get("mode") == "crash":
        sys.exit(3)
    if config.get("mode") == "silent":
        sys.exit(0)
    x, y = config["x"], config["y"]
    value = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    print_result(value * 3)
    print_result(value * 2)
    print_result([value, abs(x) + abs(y)] if config.get("labels") else value)
