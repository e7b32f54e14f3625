#!/usr/bin/env bash
# Install Debian's headless browser for the report's browser tests (root): chromium and
# chromium-driver, i.e. /usr/bin/chromium and /usr/bin/chromedriver. Idempotent; like
# scripts/slurm/start.sh it tries the package lists as they are first, then apt-get update.
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "install.sh: must run as root to apt-get install chromium chromium-driver" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
log=/tmp/hpsearch-browser-apt.log
if ! apt-get install -y --no-install-recommends chromium chromium-driver >"$log" 2>&1; then
    apt-get update >>"$log" 2>&1
    apt-get install -y --no-install-recommends chromium chromium-driver >>"$log" 2>&1 \
        || { cat "$log" >&2; exit 1; }
fi
echo "browser: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
