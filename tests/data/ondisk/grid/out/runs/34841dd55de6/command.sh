#!/bin/sh
export HPSEARCH_RUN_ID=34841dd55de6
export HPSEARCH_TRIAL=4
export HPSEARCH_ATTEMPT=1
export HPSEARCH_OUT_DIR=/tmp/hpsearch-ondisk/grid/out/runs/34841dd55de6/out
cd /tmp/hpsearch-ondisk/grid/sim && exec /work/wt/compat/.venv/bin/python sim.py --out_dir=/tmp/hpsearch-ondisk/grid/out/runs/34841dd55de6/out --x=2 --y=0
