"""Names hpsearch keeps for itself: the results table's columns and a run directory's files.

No parameter or metric may take a column's name: a grid key or summary keyword spelled like
one would overwrite that column of ``search_results.csv`` (and of ``status``);
:mod:`hpsearch.spec.gridmodule` refuses such names. No config template may take a run
directory file's name: its per-run copy would overwrite that file
(:mod:`hpsearch.spec.configfile` refuses it). What each file holds is the run directory's
contract, :mod:`hpsearch.runs.files`.
"""

#: columns every row has, after the parameters and the summary keywords
STATUS_COLUMNS = ("status", "attempts", "failure_reason", "wall_time", "run_id", "run_dir",
                  "job_id")
#: columns that some searches add: the proposal order, backend facts, pruning, Pareto front,
#: a multi-fidelity search's lineage (:attr:`hpsearch.strategies.base.Proposal.lineage`)
EXTRA_COLUMNS = ("trial", "gpu", "steps", "pareto", "started", "ended", "queued",
                 "gpu_hours", "cpu_hours", "hours_from", "continues", "bracket", "rung",
                 "member", "segment", "feasible")
RESERVED_COLUMNS = frozenset(STATUS_COLUMNS + EXTRA_COLUMNS)

# -- the files and folders of a run directory (``<out_dir>/runs/<run_id>/``) ---------------
RUN_FILE = "run.json"
COMMAND_FILE = "command.sh"
STDOUT_FILE = "stdout.log"
STDERR_FILE = "stderr.log"
STARTED_FILE = "started_at"
EXIT_FILE = "exit_code"
WARNING_FILE = "walltime_warning"
REASON_FILE = "reason"
SIM_OUT_DIR = "out"
ATTEMPTS_DIR = "attempts"
#: the record directories of a run's other nodes (``nodes/<i>/``: node i's wrapper's files)
NODES_DIR = "nodes"
#: the files of one attempt, moved to attempts/<n>/ before the next one
ATTEMPT_FILES = (STARTED_FILE, EXIT_FILE, STDOUT_FILE, STDERR_FILE, REASON_FILE, WARNING_FILE,
                 NODES_DIR)
#: every name of a run directory that is hpsearch's
RESERVED_FILES = frozenset({*ATTEMPT_FILES, RUN_FILE, COMMAND_FILE, SIM_OUT_DIR, ATTEMPTS_DIR})
