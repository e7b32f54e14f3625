"""``python -m hpsearch.objective_runner``: runs a function objective, as run commands name it.

The runner lives in :mod:`hpsearch.runs.objective_runner`; this name stays because recorded
run commands (``search.json``) and queued job scripts name it.
"""

import sys

from hpsearch.runs.objective_runner import main

if __name__ == "__main__":
    sys.exit(main())
