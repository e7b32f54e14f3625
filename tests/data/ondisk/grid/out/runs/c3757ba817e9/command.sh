#!/bin/sh
export HPSEARCH_RUN_ID=c3757ba817e9
export HPSEARCH_TRIAL=0
export HPSEARCH_ATTEMPT=1
export HPSEARCH_OUT_DIR=/tmp/hpsearch-ondisk/grid/out/runs/c3757ba817e9/out
cd /tmp/hpsearch-ondisk/grid/sim && exec /work/wt/compat/.venv/bin/python sim.py --out_dir=/tmp/hpsearch-ondisk/grid/out/runs/c3757ba817e9/out --x=0 --y=0
