#!/usr/bin/env bash
# Stop the single-node Grid Engine cell started by start.sh: sge_execd, then sge_qmaster
# (qconf -ke / -km ask them to shut down; their pid files are the fallback). Its jobs are
# left to the next start (the spool keeps them); idempotent.
set -euo pipefail
export SGE_ROOT=${SGE_ROOT:-/var/lib/gridengine}
export SGE_CELL=${SGE_CELL:-default}
SPOOL=/var/spool/gridengine

# alive and not a zombie (a daemon's parent here may be slow to reap it)
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }

stop_daemon() {  # name pid_file shutdown-command...
    local name=$1 file=$2 pid
    shift 2
    pid=$(cat "$file" 2>/dev/null || true)
    if [ -z "$pid" ] || ! alive "$pid"; then
        echo "sge: $name not running"
        return 0
    fi
    timeout 10 "$@" >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then kill -9 "$pid"; fi
    echo "sge: stopped $name (pid $pid)"
}

stop_daemon sge_execd "$SPOOL/execd/localhost/execd.pid" qconf -ke localhost
stop_daemon sge_qmaster "$SPOOL/qmaster/qmaster.pid" qconf -km
