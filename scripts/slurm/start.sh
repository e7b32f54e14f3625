#!/usr/bin/env bash
# Install (if needed) and start a single-node Slurm cluster on localhost, as root, without
# systemd: munged, slurmctld, slurmd. Idempotent: if the node already answers, exit 0.
#
#   sudo scripts/slurm/start.sh        # then: sinfo; sbatch ...; scripts/slurm/stop.sh
#
# State lives in $HPSEARCH_SLURM_DIR (default /var/lib/hpsearch-slurm): pid files, logs,
# spool. The node advertises $HPSEARCH_SLURM_CPUS CPUs (default 8, more than the machine
# has, so arrays run side by side) and two fake GPUs (character devices, gres gpu:2).
set -euo pipefail

# one start at a time: the test workers' session fixtures may call this together. flock
# holds the lock itself (-o: not on a descriptor the daemons started here would inherit)
if [ "${HPSEARCH_SLURM_START_LOCKED:-}" != 1 ]; then
    exec env HPSEARCH_SLURM_START_LOCKED=1 flock -o "${TMPDIR:-/tmp}/hpsearch-slurm-start.lock" \
        bash "$0" "$@"
fi

STATE=${HPSEARCH_SLURM_DIR:-/var/lib/hpsearch-slurm}
CPUS=${HPSEARCH_SLURM_CPUS:-8}
CONF_DIR=/etc/slurm
NODE=$(hostname -s)

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

node_up() {
    # sinfo -h -n NODE -o %T prints e.g. "idle", "mixed", "allocated" (no header)
    local state
    state=$(timeout 5 sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1) || return 1
    case "$state" in idle*|mixed*|allocated*|completing*) return 0 ;; *) return 1 ;; esac
}

if [ "$(id -u)" != 0 ]; then
    echo "start.sh: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if pid_alive "$STATE/run/slurmctld.pid" && pid_alive "$STATE/run/slurmd.pid" && node_up; then
    echo "slurm: already running on $NODE ($(sinfo -h -n "$NODE" -o %T))"
    exit 0
fi

t0=$(now)
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
        || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge \
            >"/tmp/hpsearch-slurm-apt.log" 2>&1; then
        apt-get update >>"/tmp/hpsearch-slurm-apt.log" 2>&1
        apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge \
            >>"/tmp/hpsearch-slurm-apt.log" 2>&1 \
            || { cat /tmp/hpsearch-slurm-apt.log >&2; exit 1; }
    fi
    echo "slurm: installed packages in $(elapsed "$t0") s"
fi

t1=$(now)
mkdir -p "$STATE"/{spool/ctld,spool/d,log,run,gpu} "$CONF_DIR"

# munge: a key, then the daemon as user munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --force >/dev/null 2>&1 || true; fi
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge
if ! [ -S /run/munge/munge.socket.2 ] || ! munge -n </dev/null >/dev/null 2>&1; then
    rm -f /run/munge/munge.socket.2 /run/munge/munged.pid
    su -s /bin/sh munge -c "munged --pid-file=/run/munge/munged.pid"
fi
cp /run/munge/munged.pid "$STATE/run/munged.pid" 2>/dev/null || true

# fake GPUs: character devices (like /dev/null) that slurmd accepts as GPU files
for i in 0 1; do
    [ -c "$STATE/gpu/nvidia$i" ] || { rm -f "$STATE/gpu/nvidia$i"; mknod "$STATE/gpu/nvidia$i" c 1 3; }
done

cat >"$CONF_DIR/slurm.conf" <<CONF
# written by hpsearch scripts/slurm/start.sh: a single-node test cluster
ClusterName=hpsearch
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
SchedulerParameters=batch_sched_delay=0
MinJobAge=600
ReturnToService=2
MaxArraySize=1001
MaxJobCount=10000
GresTypes=gpu
NodeName=$NODE CPUs=$CPUS RealMemory=4000 Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
cat >"$CONF_DIR/gres.conf" <<CONF
AutoDetect=off
NodeName=$NODE Name=gpu File=$STATE/gpu/nvidia0
NodeName=$NODE Name=gpu File=$STATE/gpu/nvidia1
CONF

pid_alive "$STATE/run/slurmctld.pid" || slurmctld -i
pid_alive "$STATE/run/slurmd.pid" || slurmd

for _ in $(seq 1 300); do
    if node_up; then
        echo "slurm: started on $NODE in $(elapsed "$t1") s ($(sinfo -h -n "$NODE" -o %T))"
        exit 0
    fi
    sleep 0.1
done
echo "slurm: node $NODE did not become idle within 30 s; logs in $STATE/log:" >&2
tail -n 20 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
sinfo >&2 || true
exit 1
