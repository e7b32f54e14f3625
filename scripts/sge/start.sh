#!/usr/bin/env bash
# Install (if needed) and start a single-node Grid Engine cell on localhost, as root, without
# systemd: sge_qmaster and sge_execd (Debian 12's gridengine 8.1.9, Son of Grid Engine).
# Idempotent: if the queue already answers, exit 0.
#
#   sudo scripts/sge/start.sh        # then: qstat -f; qsub ...; scripts/sge/stop.sh
#
# What makes qmaster accept this host inside a container (it refuses clients whose address
# resolves to a name other than their own): host_aliases maps `localhost` to this host's name
# and act_qmaster is `localhost`. The global configuration lets root submit (min_uid/min_gid
# 0), accounting is flushed every second (qacct), the scheduler runs every second, the queue
# all.q on localhost has $HPSEARCH_SGE_SLOTS slots (default 8, more than the machine has, so
# arrays run side by side) and no load thresholds (other work on this machine must not close
# it), the parallel environment `smp` takes any number of a host's slots, and the host
# offers $HPSEARCH_SGE_GPUS (default 2) of the consumable `gpu` (`qsub -l gpu=1`).
set -euo pipefail

export SGE_ROOT=${SGE_ROOT:-/var/lib/gridengine}
export SGE_CELL=${SGE_CELL:-default}
SLOTS=${HPSEARCH_SGE_SLOTS:-8}
GPUS=${HPSEARCH_SGE_GPUS:-2}
COMMON=$SGE_ROOT/$SGE_CELL/common
LOG=/tmp/hpsearch-sge-apt.log
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

queue_up() {
    # `qstat -f -q all.q` lists the queue instance, e.g. "all.q@localhost  BIP  0/0/8 ..."
    # with a state column after the load when it is disabled, in alarm or unknown
    local line
    line=$(timeout 5 qstat -f -q all.q 2>/dev/null | grep '^all\.q@') || return 1
    [ "$(echo "$line" | awk '{ print NF }')" -le 5 ]
}

if [ "$(id -u)" != 0 ]; then
    echo "start.sh: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

daemon_alive() { pgrep -x "$1" >/dev/null 2>&1; }
if daemon_alive sge_qmaster && daemon_alive sge_execd && queue_up; then
    echo "sge: already running on localhost ($(qstat -f -q all.q | grep '^all\.q@' | awk '{ print $3 }') slots)"
    exit 0
fi

t0=$(now)
if ! command -v qsub >/dev/null || ! [ -x /usr/sbin/sge_qmaster ] || ! [ -x /usr/sbin/sge_execd ]; then
    # the packages' own questions, answered: configure the cell `default` automatically,
    # with its qmaster on localhost
    for package in gridengine-common gridengine-client; do
        printf '%s shared/gridengineconfig boolean true\n%s shared/gridenginecell string %s\n%s shared/gridenginemaster string localhost\n' \
            "$package" "$package" "$SGE_CELL" "$package"
    done | debconf-set-selections
    export DEBIAN_FRONTEND=noninteractive
    packages=(gridengine-master gridengine-exec gridengine-client)
    if ! apt-get install -y --no-install-recommends "${packages[@]}" >"$LOG" 2>&1; then
        apt-get update >>"$LOG" 2>&1
        apt-get install -y --no-install-recommends "${packages[@]}" >>"$LOG" 2>&1 \
            || { cat "$LOG" >&2; exit 1; }
    fi
    echo "sge: installed packages in $(elapsed "$t0") s"
fi

t1=$(now)
echo "localhost $(hostname)" >"$COMMON/host_aliases"
echo localhost >"$COMMON/act_qmaster"
daemon_alive sge_qmaster || (cd / && /usr/sbin/sge_qmaster)
for _ in $(seq 1 100); do timeout 5 qconf -sh >/dev/null 2>&1 && break; sleep 0.1; done

# the global configuration: root may submit, accounting reaches qacct within a second
qconf -sconf global \
    | sed -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
          -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' >"$WORK/global"
qconf -Mconf "$WORK/global" >/dev/null
# the scheduler: every second, and right after each submission and each job's end
qconf -ssconf \
    | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
          -e 's/^job_load_adjustments .*/job_load_adjustments NONE/' \
          -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
          -e 's/^flush_finish_sec .*/flush_finish_sec 1/' >"$WORK/sched"
qconf -Msconf "$WORK/sched" >/dev/null
# a consumable `gpu` complex
if ! qconf -sc | grep -q '^gpu '; then
    { qconf -sc; echo "gpu gpu INT <= YES YES 0 0"; } >"$WORK/complexes"
    qconf -Mc "$WORK/complexes" >/dev/null
fi
qconf -sh 2>/dev/null | grep -qx localhost || qconf -ah localhost >/dev/null
qconf -ss 2>/dev/null | grep -qx localhost || qconf -as localhost >/dev/null
cat >"$WORK/host" <<HOST
hostname              localhost
load_scaling          NONE
complex_values        gpu=$GPUS
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
HOST
if qconf -se localhost >/dev/null 2>&1; then
    qconf -Me "$WORK/host" >/dev/null
else
    qconf -Ae "$WORK/host" >/dev/null
fi
cat >"$WORK/pe" <<PE
pe_name            smp
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    NONE
stop_proc_args     NONE
allocation_rule    \$pe_slots
control_slaves     FALSE
job_is_first_task  TRUE
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
PE
if qconf -sp smp >/dev/null 2>&1; then qconf -Mp "$WORK/pe" >/dev/null; else qconf -Ap "$WORK/pe" >/dev/null; fi
daemon_alive sge_execd || (cd / && /usr/sbin/sge_execd)
# the queue: a template from qconf's own defaults, on localhost, with SLOTS slots
if qconf -sq all.q >/dev/null 2>&1; then qconf -sq all.q >"$WORK/queue"; else
    qconf -sq >"$WORK/queue"  # without a name: the template of a new queue
fi
sed -i -e 's/^qname .*/qname all.q/' -e 's/^hostlist .*/hostlist localhost/' \
    -e "s/^slots .*/slots $SLOTS/" -e 's/^load_thresholds .*/load_thresholds NONE/' \
    -e 's/^pe_list .*/pe_list smp/' -e 's|^shell .*|shell /bin/sh|' "$WORK/queue"
if qconf -sq all.q >/dev/null 2>&1; then qconf -Mq "$WORK/queue" >/dev/null; else qconf -Aq "$WORK/queue" >/dev/null; fi

for _ in $(seq 1 300); do
    if queue_up; then
        echo "sge: started on localhost in $(elapsed "$t1") s ($SLOTS slots)"
        exit 0
    fi
    sleep 0.1
done
echo "sge: queue all.q@localhost did not come up within 30 s:" >&2
qstat -f >&2 || true
tail -n 20 /var/spool/gridengine/qmaster/messages /var/spool/gridengine/execd/localhost/messages >&2 || true
exit 1
