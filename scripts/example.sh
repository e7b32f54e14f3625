#!/usr/bin/env bash
# Install hpsearch and run the example search end to end: 72 configurations of the
# quadratic sim (sims/quadratic) on 2 CPU slots, then print the results table.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup_venv.sh .
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --force-reinstall .
.venv/bin/hpsearch --grid_module=sims.quadratic.hpsearch_config --run_cwd=sims/quadratic \
  --out_dir=out/quadratic --visible_gpus=-1 --num_jobs=2
# the 15 best runs, without the long path columns
cut -d ';' -f 1-13 out/quadratic/search_results.csv | head -n 16 | sed 's/;/\t/g'
