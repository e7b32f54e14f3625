#!/usr/bin/env bash
# Start three SSH "workstations" on this machine, as root, without systemd: one sshd per host
# on a loopback address (gpu1 127.0.0.2, gpu2 127.0.0.3, gpu3 127.0.0.4, port $PORT), plus gpu4
# (127.0.0.5), whose sshd runs in its own mount namespace with an empty tmpfs over /tmp: a
# workstation that does not see this machine's /tmp (where a search directory of the tests
# lies), for the shared-directory check. Installs Debian's openssh-server (and the client) if
# missing. Idempotent: a host whose sshd runs is left alone.
#
#   scripts/ssh/start.sh     # then: ssh -F /var/lib/hpsearch-ssh/ssh_config gpu1 nvidia-smi ...
#   scripts/ssh/stop.sh
#
# Everything lies under $HPSEARCH_SSH_STATE (default /var/lib/hpsearch-ssh, outside /tmp):
# a key pair made here (id_ed25519), authorized_keys, the client's ssh_config (Host gpuN ->
# HostName 127.0.0.N+1, that key, no host key checks), and per host gpuN/: sshd_config, host
# key, sshd.pid and gpus/, the fake GPUs' state. Each sshd gives its sessions (SetEnv) a PATH
# that finds the fake nvidia-smi (bin/nvidia-smi -> tests/fakes/nvidia-smi of this checkout),
# FAKE_GPUS=2x16384 and FAKE_GPU_STATE=gpuN/gpus: two fake GPUs per host, each host its own,
# and HOME=gpuN/home (empty), so that what this machine's own ~/.bashrc does (bash reads it
# for commands sshd runs) is no part of the tests' hosts.
set -euo pipefail

# one start at a time: the test workers' session fixtures may call this together. flock
# holds the lock itself (-o: not on a descriptor the daemons started here would inherit)
if [ "${HPSEARCH_SSH_START_LOCKED:-}" != 1 ]; then
    exec env HPSEARCH_SSH_START_LOCKED=1 flock -o "${TMPDIR:-/tmp}/hpsearch-ssh-start.lock" \
        bash "$0" "$@"
fi

STATE=${HPSEARCH_SSH_STATE:-/var/lib/hpsearch-ssh}
PORT=${HPSEARCH_SSH_PORT:-2222}
HOSTS=(gpu1:127.0.0.2 gpu2:127.0.0.3 gpu3:127.0.0.4 gpu4:127.0.0.5)
REPO=$(cd "$(dirname "$0")/../.." && pwd)
LOG=/tmp/hpsearch-ssh-apt.log

if [ "$(id -u)" != 0 ]; then
    echo "start.sh: must run as root (it installs packages and starts daemons)" >&2
    exit 1
fi
if ! [ -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null || ! command -v ssh-keygen >/dev/null
then
    export DEBIAN_FRONTEND=noninteractive
    packages=(openssh-server openssh-client)
    if ! apt-get install -y --no-install-recommends "${packages[@]}" >"$LOG" 2>&1; then
        apt-get update >>"$LOG" 2>&1
        apt-get install -y --no-install-recommends "${packages[@]}" >>"$LOG" 2>&1 \
            || { cat "$LOG" >&2; exit 1; }
    fi
    echo "ssh: installed openssh-server"
fi

mkdir -p "$STATE/bin" /run/sshd
chmod 700 "$STATE"
ln -sfn "$REPO/tests/fakes/nvidia-smi" "$STATE/bin/nvidia-smi"
[ -f "$STATE/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C hpsearch-ssh-tests \
    -f "$STATE/id_ed25519"
cp "$STATE/id_ed25519.pub" "$STATE/authorized_keys"

{
    for entry in "${HOSTS[@]}"; do
        printf 'Host %s\n    HostName %s\n' "${entry%%:*}" "${entry#*:}"
    done
    printf 'Host *\n    Port %s\n    User root\n    IdentityFile %s\n' "$PORT" \
        "$STATE/id_ed25519"
    printf '    IdentitiesOnly yes\n    StrictHostKeyChecking no\n'
    printf '    UserKnownHostsFile /dev/null\n    LogLevel ERROR\n'
} >"$STATE/ssh_config.new"
mv "$STATE/ssh_config.new" "$STATE/ssh_config"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

for entry in "${HOSTS[@]}"; do
    name=${entry%%:*} address=${entry#*:}
    dir=$STATE/$name
    mkdir -p "$dir/gpus" "$dir/home"
    if alive "$dir/sshd.pid"; then
        continue
    fi
    [ -f "$dir/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    cat >"$dir/sshd_config" <<CONFIG
ListenAddress $address
Port $PORT
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $STATE/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxSessions 100
MaxStartups 100
LogLevel ERROR
SetEnv HOME=$dir/home PATH=$STATE/bin:/usr/local/bin:/usr/bin:/bin FAKE_GPUS=2x16384 FAKE_GPU_STATE=$dir/gpus HPSEARCH_SSH_TEST_HOST=$name
CONFIG
    if [ "$name" = gpu4 ]; then
        unshare --mount --propagation private \
            sh -c 'mount -t tmpfs hpsearch-ssh-gpu4 /tmp && exec /usr/sbin/sshd -f "$1"' \
            sh "$dir/sshd_config"
    else
        /usr/sbin/sshd -f "$dir/sshd_config"
    fi
done

for entry in "${HOSTS[@]}"; do
    name=${entry%%:*}
    for _ in $(seq 100); do
        ssh -F "$STATE/ssh_config" -o BatchMode=yes -o ConnectTimeout=2 "$name" true \
            2>/dev/null && continue 2
        sleep 0.1
    done
    echo "start.sh: sshd of $name does not answer" >&2
    exit 1
done
echo "ssh: gpu1..gpu4 answer on port $PORT (client config: $STATE/ssh_config)"
