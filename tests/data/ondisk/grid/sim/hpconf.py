"""Grid module of the on-disk compatibility data (tests/data/ondisk/make.py): 12 configurations."""

grid = {
    "x": [0, 1, 2, 3, 4, 5],
    "y": [0, 1],
}
conditions = []

_SCRIPT_NAME = "sim.py"
_SUMMARY_FILENAME = "perf.txt"
_SUMMARY_KEYWORDS = ["loss", "finished"]
_OUT_ARG = "out_dir"
_SUMMARY_PARSER_HANDLE = None
_PERFORMANCE_KEY = "loss"
_PERFORMANCE_SORT_ASC = True
_PERFORMANCE_EVAL_HANDLE = None
_ARGPARSE_HANDLE = None
