#!/bin/sh
export HPSEARCH_RUN_ID=0a87b79b2ef9
export HPSEARCH_TRIAL=1
export HPSEARCH_ATTEMPT=1
export HPSEARCH_OUT_DIR=/tmp/hpsearch-ondisk/grid/out/runs/0a87b79b2ef9/out
cd /tmp/hpsearch-ondisk/grid/sim && exec /work/wt/compat/.venv/bin/python sim.py --out_dir=/tmp/hpsearch-ondisk/grid/out/runs/0a87b79b2ef9/out --x=0 --y=1
