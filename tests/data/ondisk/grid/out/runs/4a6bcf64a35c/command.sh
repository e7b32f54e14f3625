#!/bin/sh
export HPSEARCH_RUN_ID=4a6bcf64a35c
export HPSEARCH_TRIAL=2
export HPSEARCH_ATTEMPT=1
export HPSEARCH_OUT_DIR=/tmp/hpsearch-ondisk/grid/out/runs/4a6bcf64a35c/out
cd /tmp/hpsearch-ondisk/grid/sim && exec /work/wt/compat/.venv/bin/python sim.py --out_dir=/tmp/hpsearch-ondisk/grid/out/runs/4a6bcf64a35c/out --x=1 --y=0
