"""Benchmark grid: 100 x 100 x 100 = 10**6 points, one condition that fans out."""

grid = {
    "a": list(range(100)),
    "b": list(range(100)),
    "c": [i / 10 for i in range(100)],
    "seconds": [0],
}
conditions = [
    ({"a": [0, 1, 2]}, {"b": [0, 1]}),
]

_SCRIPT_NAME = "sleep_sim.sh"
_SUMMARY_FILENAME = "summary.txt"
_SUMMARY_KEYWORDS = ["loss", "finished"]
_PERFORMANCE_KEY = "loss"
_PERFORMANCE_SORT_ASC = True
