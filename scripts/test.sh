#!/usr/bin/env bash
# The whole test suite on a fresh machine (Debian 12, Python 3.11, root), against what users
# install: a virtual environment with the test tools and hpsearch's wheel built from this
# checkout (not an editable install), a real single-node Slurm on localhost (installed from
# Debian's packages and started by scripts/slurm/start.sh), then ruff and pytest. pytest runs
# with -P, so `import hpsearch` finds the installed wheel, never the checkout
# (tests/test_installed_wheel.py checks that). Slurm is stopped again on exit, and so is the
# single-node Grid Engine cell that scripts/sge/start.sh installs and starts beside it. The
# report's browser tests need Debian's chromium and chromium-driver (scripts/browser/install.sh).
# The gp tests need torch (Optuna's GPSampler): torch==2.13.0 is pinned here so that pip takes
# the CPU build where one lies in its find-links (this machine kind's /opt/wheels) and the
# gp extra's unpinned torch then installs nothing more; elsewhere pip fetches that release.
# The SSH tests' hosts (one sshd per loopback address, scripts/ssh/start.sh) are started too and
# stopped on exit. HPSEARCH_SKIP_SLURM=1 skips the cluster, HPSEARCH_SKIP_SGE=1 Grid Engine,
# HPSEARCH_SKIP_SSH=1 the SSH hosts, HPSEARCH_SKIP_BROWSER=1 the browser. mkdocs builds the
# documentation site (docs/, mkdocs.yml) with --strict before pytest runs. pytest runs
# $HPSEARCH_TEST_WORKERS (default 4) tests at a time (pytest-xdist): most tests wait on
# processes, schedulers and sims rather than compute, and each one owns its files, runs and
# jobs, so they do not see one another; the tests of the SSH hosts, whose fake GPUs are
# machine-wide, take turns (tests/ssh_fixture.py).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup_venv.sh 'torch==2.13.0' '.[test,gp,docs]'
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps --force-reinstall .
export PATH="$PWD/.venv/bin:$PATH"

if [ "${HPSEARCH_SKIP_BROWSER:-0}" != 1 ]; then
  bash scripts/browser/install.sh || echo "test.sh: no browser; the browser tests will fail" >&2
fi

stops=()
trap 'for stop in "${stops[@]}"; do bash "$stop" || true; done' EXIT
if [ "${HPSEARCH_SKIP_SLURM:-0}" != 1 ]; then
  stops+=(scripts/slurm/stop.sh)
  bash scripts/slurm/start.sh
fi
if [ "${HPSEARCH_SKIP_SGE:-0}" != 1 ]; then
  stops+=(scripts/sge/stop.sh)
  bash scripts/sge/start.sh
fi
if [ "${HPSEARCH_SKIP_SSH:-0}" != 1 ]; then
  stops+=(scripts/ssh/stop.sh)
  bash scripts/ssh/start.sh
fi

.venv/bin/python -m ruff check .
# the documentation site: a broken link, anchor or reference fails the build (NO_MKDOCS_2_WARNING
# silences Material's banner about MkDocs 2)
docs_site=$(mktemp -d)
docs_status=0
NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict --quiet --site-dir "$docs_site" \
  || docs_status=$?
rm -rf "$docs_site"
[ "$docs_status" = 0 ] || exit "$docs_status"
.venv/bin/python -P -m pytest -q -n "${HPSEARCH_TEST_WORKERS:-4}" "$@"
