"""The names of the results table's own columns: no parameter or metric may take one.

A grid key or summary keyword spelled like one of these would overwrite that column of
``search_results.csv`` (and of ``status``); :mod:`hpsearch.spec.gridmodule` refuses such names.
"""

#: columns every row has, after the parameters and the summary keywords
STATUS_COLUMNS = ("status", "attempts", "failure_reason", "wall_time", "run_id", "run_dir",
                  "job_id")
#: columns that some searches add: the proposal order, backend facts, pruning, Pareto front
EXTRA_COLUMNS = ("trial", "gpu", "steps", "pareto", "started", "ended", "queued",
                 "gpu_hours", "cpu_hours")
RESERVED_COLUMNS = frozenset(STATUS_COLUMNS + EXTRA_COLUMNS)
