"""Grid module for the quadratic sim, in hypnettorch's hpsearch_config_template format."""

grid = {
    "x": [-1.0, 0.0, 1.0, 2.0],
    "y": [-1.0, -0.5, 0.0],
    "optimizer": ['"sgd"', '"momentum"'],
    "use_bias": [False, True],
}

# With momentum, also try two momentum values (one configuration becomes two).
conditions = [
    ({"optimizer": ['"momentum"']}, {"momentum": [0.5, 0.9]}),
]

_SCRIPT_NAME = "quadratic.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = ["loss", "score", "finished"]
_OUT_ARG = "out_dir"
_SUMMARY_PARSER_HANDLE = None
_PERFORMANCE_KEY = "loss"
_PERFORMANCE_SORT_ASC = True
_PERFORMANCE_EVAL_HANDLE = None
_ARGPARSE_HANDLE = None
