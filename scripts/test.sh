#!/usr/bin/env bash
# The whole test suite on a fresh machine (Debian 12, Python 3.11, root):
# a virtual environment with hpsearch and its test tools, a real single-node Slurm on
# localhost (installed from Debian's packages and started by scripts/slurm/start.sh),
# then pytest. Slurm is stopped again on exit. HPSEARCH_SKIP_SLURM=1 skips the cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
export PATH="$PWD/.venv/bin:$PATH"

if [ "${HPSEARCH_SKIP_SLURM:-0}" != 1 ]; then
  trap 'bash scripts/slurm/stop.sh || true' EXIT
  bash scripts/slurm/start.sh
fi

.venv/bin/python -m ruff check .
.venv/bin/python -m pytest -q "$@"
