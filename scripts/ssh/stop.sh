#!/usr/bin/env bash
# Stop the sshd of each host scripts/ssh/start.sh started (by its pid file); idempotent.
# Sessions still open end with their sshd's children; runs started detached go on.
set -euo pipefail
STATE=${HPSEARCH_SSH_STATE:-/var/lib/hpsearch-ssh}
for pidfile in "$STATE"/gpu*/sshd.pid; do
    [ -s "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
done
echo "ssh: stopped"
