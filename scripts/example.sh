#!/usr/bin/env bash
# Install hpsearch and run the example search end to end: 72 configurations of the
# quadratic sim (sims/quadratic) on 2 CPU slots, then print the results table.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
.venv/bin/hpsearch --grid_module=sims.quadratic.hpsearch_config --run_cwd=sims/quadratic \
  --out_dir=out/quadratic --visible_gpus=-1 --num_jobs=2
# the 15 best runs, without the long path columns
cut -d ';' -f 1-13 out/quadratic/search_results.csv | head -n 16 | sed 's/;/\t/g'
