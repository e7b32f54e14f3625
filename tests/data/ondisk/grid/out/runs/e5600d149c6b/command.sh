#!/bin/sh
export HPSEARCH_RUN_ID=e5600d149c6b
export HPSEARCH_TRIAL=6
export HPSEARCH_ATTEMPT=1
export HPSEARCH_OUT_DIR=/tmp/hpsearch-ondisk/grid/out/runs/e5600d149c6b/out
cd /tmp/hpsearch-ondisk/grid/sim && exec /work/wt/compat/.venv/bin/python sim.py --out_dir=/tmp/hpsearch-ondisk/grid/out/runs/e5600d149c6b/out --x=3 --y=0
