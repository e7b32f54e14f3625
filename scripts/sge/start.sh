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
# offers $HPSEARCH_SGE_GPUS (default 2) of the consumable `gpu` (`qsub -l gpu=1`), counted per
# job.
set -euo pipefail

# one start at a time: the test workers' session fixtures may call this together. flock
# holds the lock itself (-o: not on a descriptor the daemons started here would inherit)
if [ "${HPSEARCH_SGE_START_LOCKED:-}" != 1 ]; then
    exec env HPSEARCH_SGE_START_LOCKED=1 flock -o "${TMPDIR:-/tmp}/hpsearch-sge-start.lock" \
        bash "$0" "$@"
fi

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

SPOOL=/var/spool/gridengine
# a live process (not a zombie: a daemon's parent here may be slow to reap it)
pid_alive() {
    [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null \
        && [ "$(ps -o stat= -p "$(cat "$1")" | cut -c1)" != Z ]
}
qmaster_alive() { pid_alive "$SPOOL/qmaster/qmaster.pid"; }
execd_alive() { pid_alive "$SPOOL/execd/localhost/execd.pid"; }
# qconf's own messages ("root@localhost modified ...") go to stderr: shown only on failure
quiet() { local out; out=$("$@" 2>&1) || { echo "$out" >&2; return 1; }; }
if qmaster_alive && execd_alive && queue_up; then
    echo "sge: already running on localhost (all.q: $(qstat -f -q all.q | grep '^all\.q@' | awk '{ print $3 }') slots reserved/used/total)"
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
qmaster_alive || (cd / && /usr/sbin/sge_qmaster)
for _ in $(seq 1 100); do timeout 5 qconf -sh >/dev/null 2>&1 && break; sleep 0.1; done
if ! timeout 5 qconf -sh >/dev/null 2>&1; then
    echo "sge: sge_qmaster does not answer within 10 s; its log:" >&2
    tail -n 20 "$SPOOL/qmaster/messages" >&2 || true
    exit 1
fi

# the global configuration: root may submit, accounting reaches qacct within a second
qconf -sconf global \
    | sed -e 's/^min_uid .*/min_uid 0/' -e 's/^min_gid .*/min_gid 0/' \
          -e 's/flush_time=[0-9:]*/flush_time=00:00:01/' >"$WORK/global"
quiet qconf -Mconf "$WORK/global"
# the scheduler: every second, and right after each submission and each job's end
qconf -ssconf \
    | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
          -e 's/^job_load_adjustments .*/job_load_adjustments NONE/' \
          -e 's/^flush_submit_sec .*/flush_submit_sec 1/' \
          -e 's/^flush_finish_sec .*/flush_finish_sec 1/' >"$WORK/sched"
quiet qconf -Msconf "$WORK/sched"
# a consumable `gpu` complex, counted per job (JOB), not per slot: -pe smp 4 -l gpu=1 is one GPU
if ! qconf -sc | grep -q '^gpu .* JOB '; then
    { qconf -sc | grep -v '^gpu '; echo "gpu gpu INT <= YES JOB 0 0"; } >"$WORK/complexes"
    quiet qconf -Mc "$WORK/complexes"
fi
qconf -sh 2>/dev/null | grep -qx localhost || quiet qconf -ah localhost
qconf -ss 2>/dev/null | grep -qx localhost || quiet qconf -as localhost
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
    quiet qconf -Me "$WORK/host"
else
    quiet qconf -Ae "$WORK/host"
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
if qconf -sp smp >/dev/null 2>&1; then quiet qconf -Mp "$WORK/pe"; else quiet qconf -Ap "$WORK/pe"; fi
execd_alive || (cd / && /usr/sbin/sge_execd)
# the queue: a template from qconf's own defaults, on localhost, with SLOTS slots
if qconf -sq all.q >/dev/null 2>&1; then qconf -sq all.q >"$WORK/queue"; else
    qconf -sq >"$WORK/queue"  # without a name: the template of a new queue
fi
sed -i -e 's/^qname .*/qname all.q/' -e 's/^hostlist .*/hostlist localhost/' \
    -e "s/^slots .*/slots $SLOTS/" -e 's/^load_thresholds .*/load_thresholds NONE/' \
    -e 's/^pe_list .*/pe_list smp/' -e 's|^shell .*|shell /bin/sh|' "$WORK/queue"
if qconf -sq all.q >/dev/null 2>&1; then quiet qconf -Mq "$WORK/queue"; else quiet qconf -Aq "$WORK/queue"; fi

for _ in $(seq 1 300); do
    if queue_up; then
        echo "sge: started on localhost in $(elapsed "$t1") s ($SLOTS slots)"
        exit 0
    fi
    sleep 0.1
done
echo "sge: queue all.q@localhost did not come up within 30 s:" >&2
qstat -f >&2 || true
tail -n 20 "$SPOOL/qmaster/messages" "$SPOOL/execd/localhost/messages" >&2 || true
exit 1
