#!/bin/sh
export HPSEARCH_RUN_ID=f0ee30313fb1
export HPSEARCH_TRIAL=5
export HPSEARCH_ATTEMPT=1
export HPSEARCH_OUT_DIR=/tmp/hpsearch-ondisk/grid/out/runs/f0ee30313fb1/out
cd /tmp/hpsearch-ondisk/grid/sim && exec /work/wt/compat/.venv/bin/python sim.py --out_dir=/tmp/hpsearch-ondisk/grid/out/runs/f0ee30313fb1/out --x=2 --y=1
