#!/bin/sh
export HPSEARCH_RUN_ID=bede63aec750
export HPSEARCH_TRIAL=3
export HPSEARCH_ATTEMPT=1
export HPSEARCH_OUT_DIR=/tmp/hpsearch-ondisk/grid/out/runs/bede63aec750/out
cd /tmp/hpsearch-ondisk/grid/sim && exec /work/wt/compat/.venv/bin/python sim.py --out_dir=/tmp/hpsearch-ondisk/grid/out/runs/bede63aec750/out --x=1 --y=1
