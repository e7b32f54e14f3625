#!/bin/sh
# A benchmark "sim": sleeps SECONDS (0 = a no-op), then writes its summary.
# Called as: sh sleep_sim.sh --out_dir=DIR --seconds=S --i=N
for arg in "$@"; do
  case "$arg" in
    --out_dir=*) out=${arg#--out_dir=} ;;
    --seconds=*) seconds=${arg#--seconds=} ;;
  esac
done
[ "${seconds:-0}" = 0 ] || sleep "$seconds"
mkdir -p "$out"
printf 'loss 1.0\nfinished 1\n' > "$out/summary.txt"
