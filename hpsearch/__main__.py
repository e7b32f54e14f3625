"""``python -m hpsearch``: the same as the ``hpsearch`` command."""

import sys

from hpsearch.cli.app import main

sys.exit(main())
