"""Grid module for the numpy logistic-regression sim (hypnettorch's template format)."""

grid = {
    "lr": [1.0, 0.1, 0.01],
    "l2": [0.0, 1e-3, 1e-2],
    "batch_size": [16, 128],
    "epochs": [5],
}

# Large batches learn slower: give them more epochs.
conditions = [
    ({"batch_size": [128]}, {"epochs": [10, 20]}),
]

_SCRIPT_NAME = "logreg.py"
_SUMMARY_FILENAME = "performance_overview.txt"
_SUMMARY_KEYWORDS = ["acc_test", "loss_test", "acc_train", "finished"]
_OUT_ARG = "out_dir"
_SUMMARY_PARSER_HANDLE = None
_PERFORMANCE_KEY = "acc_test"
_PERFORMANCE_SORT_ASC = False
_PERFORMANCE_EVAL_HANDLE = None
_ARGPARSE_HANDLE = None
