#!/usr/bin/env bash
# Stop the single-node cluster started by start.sh, by the PIDs in its pid files.
set -euo pipefail
STATE=${HPSEARCH_SLURM_DIR:-/var/lib/hpsearch-slurm}

stop_pid_file() {  # name pid_file
    local name=$1 file=$2 pid
    [ -s "$file" ] || { echo "slurm: $name not running (no $file)"; return 0; }
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid"; fi
        echo "slurm: stopped $name (pid $pid)"
    else
        echo "slurm: $name not running (stale pid $pid)"
    fi
    rm -f "$file"
}

stop_pid_file slurmd "$STATE/run/slurmd.pid"
stop_pid_file slurmctld "$STATE/run/slurmctld.pid"
stop_pid_file munged /run/munge/munged.pid
rm -f "$STATE/run/munged.pid"
