"""``python -m hpsearch.worker``: the packed cluster job, as queued job scripts name it.

The worker lives in :mod:`hpsearch.backends.cluster.worker`; this name stays so that a job
submitted before an upgrade still starts.
"""

import sys

from hpsearch.backends.cluster.worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
