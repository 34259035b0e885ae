#!/usr/bin/env bash
# Install (if missing) and start a one-node SLURM cluster on this machine, for the cluster-profile
# test (tests/slurm/) and for trying `--workflow-profile profiles/slurm` locally.
#
#   sudo bash ci/slurm/start-slurm.sh        # as root; idempotent, safe to run again
#
# What it does: Debian's slurm-wlm + munge; a munge key; /etc/slurm/slurm.conf describing this
# host exactly as `slurmd -C` sees it; munged, slurmctld and slurmd started as plain daemons (CI
# machines and containers have no systemd). No accounting daemon: job status comes from squeue,
# which is why MinJobAge is raised (see the comment in the config). It exits non-zero with the
# daemons' log tails if the node is not idle and `srun hostname` does not work within
# $SLURM_START_TIMEOUT seconds (default 90).
set -euo pipefail

TIMEOUT=${SLURM_START_TIMEOUT:-90}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
STATE_DIR=/var/lib/slurm-local # slurmctld state + slurmd spool of this throw-away cluster
LOG_DIR=/var/log/slurm
PARTITION=${SLURM_PARTITION_NAME:-debug}
T0=$(date +%s)

log() { echo "start-slurm: $*" >&2; }
logtails() {
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        [ -f "$f" ] && { echo "---- tail $f" >&2; tail -n 25 "$f" >&2; }
    done
    return 0
}
die() {
    echo "start-slurm: ERROR: $*" >&2
    logtails
    exit 1
}
# Seconds left of the overall budget (the install is not counted: apt mirrors vary too much).
left() { echo $((DEADLINE - $(date +%s))); }

[ "$(id -u)" -eq 0 ] || die "run as root: it installs packages and starts system daemons"

# ---- 1. packages ------------------------------------------------------------------------------
need_install=0
for bin in slurmctld slurmd sbatch squeue srun sinfo scontrol munged munge unmunge; do
    command -v "$bin" >/dev/null 2>&1 || need_install=1
done
if [ "$need_install" -eq 1 ]; then
    log "installing slurm-wlm and munge from the Debian archive"
    export DEBIAN_FRONTEND=noninteractive
    # Other jobs on the machine may hold the dpkg lock for a moment: wait instead of failing.
    apt_opts=(-q -y -o DPkg::Lock::Timeout=300)
    apt-get "${apt_opts[@]}" update >/dev/null || die "apt-get update failed"
    apt-get "${apt_opts[@]}" install --no-install-recommends slurm-wlm munge >/dev/null \
        || die "apt-get install slurm-wlm munge failed"
    log "installed in $(($(date +%s) - T0)) s"
fi
DEADLINE=$(($(date +%s) + TIMEOUT))

# ---- 2. munge (authentication between the SLURM commands and daemons) -------------------------
id munge >/dev/null 2>&1 || die "the munge package did not create the 'munge' user"
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge /var/log/munge
if [ ! -s /etc/munge/munge.key ]; then
    # 1 KiB of randomness, as `mungekey --create` makes; only this host needs to know it.
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if ! munge_ok; then
    log "starting munged"
    # munged refuses to run as root; the Debian init script runs it as 'munge' too.
    runuser -u munge -- /usr/sbin/munged || die "munged did not start"
    until munge_ok; do
        [ "$(left)" -gt 0 ] || die "munge -n | unmunge still fails after ${TIMEOUT} s"
        sleep 0.5
    done
fi

# ---- 3. slurm.conf for this host --------------------------------------------------------------
install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$STATE_DIR" "$STATE_DIR/ctld" "$STATE_DIR/d"
# `slurmd -C` prints this node as slurmd detects it (NodeName=<short hostname> CPUs=... Boards=...
# SocketsPerBoard=... CoresPerSocket=... ThreadsPerCore=... RealMemory=...). Declaring more
# CPUs or memory than that would make slurmctld drain the node ("Low RealMemory").
node_line=$(slurmd -C 2>/dev/null | grep -m1 '^NodeName=') || die "slurmd -C failed"
node_name=$(sed -E 's/^NodeName=([^ ]+).*/\1/' <<<"$node_line")
[ -n "$node_name" ] || die "cannot read the node name from: $node_line"

new_conf=$(mktemp)
trap 'rm -f "$new_conf"' EXIT
cat >"$new_conf" <<EOF
# Written by ci/slurm/start-slurm.sh: a one-node cluster on localhost for tests. Regenerated on
# every run; local edits are overwritten.
ClusterName=localcluster
# The node's own name, but the loopback address: no DNS or /etc/hosts entry needed.
SlurmctldHost=${node_name}(127.0.0.1)
# Root-owned daemons: a throw-away cluster whose only users are root-run CI jobs.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
StateSaveLocation=${STATE_DIR}/ctld
SlurmdSpoolDir=${STATE_DIR}/d
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in these containers: track job processes through /proc; task/affinity pins tasks
# with sched_setaffinity (no cgroup needed), so srun --cpu-bind (used by the plugin) works.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
# No slurmdbd: no accounting, no job-completion log, no usage gathering.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Without accounting, sacct cannot answer and snakemake-executor-plugin-slurm asks squeue, which
# only sees jobs slurmctld still remembers. The plugin falls back to sacct (which fails here) when
# MinJobAge < 3 x its first status-check delay (default 40 s): keep finished jobs 10 minutes.
MinJobAge=600
SchedulerType=sched/backfill
# Cores and memory are both consumable: jobs asking for more than the node has are refused at
# submission, as on a real cluster, instead of running anyway.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A node that went down (daemon restart, reboot) comes back by itself when slurmd registers.
ReturnToService=2
SlurmdTimeout=120
InactiveLimit=0
KillWait=10
Waittime=0
${node_line} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=${PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

daemon_running() { # name pidfile
    [ -s "$2" ] && kill -0 "$(cat "$2")" 2>/dev/null && [ "$(cat "/proc/$(cat "$2")/comm" 2>/dev/null)" = "$1" ]
}
stop_daemon() { # name pidfile
    if daemon_running "$1" "$2"; then
        local pid
        pid=$(cat "$2")
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
        die "$1 (pid $pid) did not stop"
    fi
}

if ! cmp -s "$new_conf" "$CONF"; then
    log "writing $CONF (node: ${node_line#NodeName=})"
    # Daemons running with an older config are restarted so that they read this one.
    stop_daemon slurmd /run/slurmd.pid
    stop_daemon slurmctld /run/slurmctld.pid
    install -m 0644 "$new_conf" "$CONF"
fi
# Debian's packages look for cgroup.conf only with cgroup plugins; nothing else is needed.

# ---- 4. daemons -------------------------------------------------------------------------------
if ! daemon_running slurmctld /run/slurmctld.pid; then
    log "starting slurmctld"
    slurmctld || die "slurmctld did not start"
fi
until scontrol ping 2>/dev/null | grep -q 'is UP'; do
    [ "$(left)" -gt 0 ] || die "slurmctld does not answer 'scontrol ping' after ${TIMEOUT} s"
    sleep 0.5
done
if ! daemon_running slurmd /run/slurmd.pid; then
    log "starting slurmd"
    slurmd || die "slurmd did not start"
fi

# ---- 5. wait until the node takes jobs --------------------------------------------------------
resumed=0
while :; do
    state=$(sinfo -h -n "$node_name" -o %T 2>/dev/null | head -1)
    case "$state" in
        # idle on a fresh start; mixed/allocated/completing if jobs of an earlier start still run.
        idle | mixed | allocated | completing) break ;;
        down* | drain* | drained*)
            # A previous run left it down (e.g. the machine restarted under a running job).
            if [ "$resumed" -eq 0 ]; then
                log "node $node_name is $state: resuming it"
                scontrol update NodeName="$node_name" State=RESUME 2>/dev/null || true
                resumed=1
            fi
            ;;
    esac
    [ "$(left)" -gt 0 ] || die "node $node_name is '${state:-unknown}', not idle, after ${TIMEOUT} s"
    sleep 0.5
done

# A real round trip: allocation, launch through slurmd, output back.
budget=$(left)
[ "$budget" -ge 10 ] || budget=10 # `timeout 0` would mean no limit at all
out=$(timeout "$budget" srun --job-name start-slurm-check -N1 -n1 -t 1 hostname 2>&1) \
    || die "'srun hostname' failed: $out"
[ "$out" = "$(hostname)" ] || [ "$out" = "$node_name" ] || die "'srun hostname' printed: $out"

log "SLURM is up: partition $PARTITION, node $node_name ($state), ready in $(($(date +%s) - T0)) s"
sinfo >&2
