#!/usr/bin/env bash
# Make .venv (Debian's python3-venv is installed if venv is missing) and pip-install into it
# what the arguments name, e.g.: bash scripts/setup_venv.sh -e '.[test]'
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  if ! python3 -m venv .venv 2>/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv
    python3 -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --disable-pip-version-check "$@"
