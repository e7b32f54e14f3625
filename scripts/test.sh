#!/usr/bin/env bash
# The whole test suite on a fresh machine (Debian 12, Python 3.11, root):
# a virtual environment with hpsearch and its test tools, a real single-node Slurm on
# localhost (installed from Debian's packages and started by scripts/slurm/start.sh),
# then pytest. Slurm is stopped again on exit. HPSEARCH_SKIP_SLURM=1 skips the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup_venv.sh -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"

if [ "${HPSEARCH_SKIP_SLURM:-0}" != 1 ]; then
  trap 'bash scripts/slurm/stop.sh || true' EXIT
  bash scripts/slurm/start.sh
fi

.venv/bin/python -m ruff check .
.venv/bin/python -m pytest -q "$@"
