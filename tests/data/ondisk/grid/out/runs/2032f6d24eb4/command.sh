#!/bin/sh
export HPSEARCH_RUN_ID=2032f6d24eb4
export HPSEARCH_TRIAL=7
export HPSEARCH_ATTEMPT=1
export HPSEARCH_OUT_DIR=/tmp/hpsearch-ondisk/grid/out/runs/2032f6d24eb4/out
cd /tmp/hpsearch-ondisk/grid/sim && exec /work/wt/compat/.venv/bin/python sim.py --out_dir=/tmp/hpsearch-ondisk/grid/out/runs/2032f6d24eb4/out --x=3 --y=1
