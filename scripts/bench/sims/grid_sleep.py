"""Benchmark grid: N runs of sleep_sim.sh; N and the sleep come from the environment."""

import os

grid = {
    "seconds": [float(os.environ.get("BENCH_SECONDS", "0.1"))],
    "i": list(range(int(os.environ.get("BENCH_RUNS", "200")))),
}
conditions = []

_SCRIPT_NAME = "sleep_sim.sh"
_SUMMARY_FILENAME = "summary.txt"
_SUMMARY_KEYWORDS = ["loss", "finished"]
_PERFORMANCE_KEY = "loss"
_PERFORMANCE_SORT_ASC = True
