#!/usr/bin/env bash
# Start a single-node SLURM cluster on this machine (controller, compute node and munge on
# localhost), for the SLURM tests (tests/test_slurm.py) and for trying profiles/slurm by hand.
#
# Runs as root on Debian; installs slurmctld, slurmd, slurm-client and munge with apt when they
# are missing. Idempotent: a cluster that is already up is left as it is. No systemd needed:
# the daemons are started directly and leave PID files that stop-local-cluster.sh uses.
#
# The node gets this machine's CPUs and memory (from `slurmd -C`) and one fake GPU (gres gpu,
# File=/dev/null), so jobs that request --gpus=1 are scheduled. There is no slurmdbd: `sacct`
# does not work, and job states come from `squeue`, which keeps finished jobs for MinJobAge
# seconds (set well above 3x the Snakemake plugin's init-seconds-before-status-checks).
#
# Exit codes: 0 the cluster is up; 3 SLURM cannot be installed here (not root, not Debian, apt
# failed), so tests skip; 1 any other failure (the daemon logs are printed).
set -euo pipefail

CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
SPOOL=/var/lib/slurm
RUN_DIR=/run/aimed-slurm
CLUSTER=aimed-local
PARTITION=debug
MIN_JOB_AGE=600

say() { echo "start-local-cluster: $*" >&2; }
cannot() { say "$*"; exit 3; }

[ "$(id -u)" = 0 ] || cannot "needs root (to install packages and start daemons)"
[ -f /etc/debian_version ] && command -v apt-get >/dev/null || cannot "needs Debian with apt-get"

# ------------------------------------------------------------------------------ packages
PACKAGES=(slurmctld slurmd slurm-client munge)
missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    # No init system runs the daemons here: keep the packages' scripts from starting them.
    policy=/usr/sbin/policy-rc.d
    made_policy=
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
    fi
    # The lock timeout: the test suite may be installing Chromium at the same time.
    install() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}" >/tmp/aimed-slurm-apt.log 2>&1; }
    ok=1
    install || { DEBIAN_FRONTEND=noninteractive apt-get update -q >>/tmp/aimed-slurm-apt.log 2>&1 && install; } || ok=
    [ -n "$made_policy" ] && rm -f "$policy"
    if [ -z "$ok" ]; then
        tail -n 20 /tmp/aimed-slurm-apt.log >&2 || true
        cannot "apt-get could not install ${missing[*]} (log: /tmp/aimed-slurm-apt.log)"
    fi
fi

# A daemon is alive when its PID file names a running process (not a zombie: nothing here reaps them).
alive() {
    local pid state
    pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] || return 1
    state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    case "$state" in Z*) return 1 ;; esac
}

# ------------------------------------------------------------------------------ munge
mkdir -p "$RUN_DIR" /run/munge "$LOG_DIR" "$SPOOL/slurmctld" "$SPOOL/slurmd"
chown munge:munge /run/munge
chmod 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key --force
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
started=
if ! alive /run/munge/munged.pid; then
    started=1
    rm -f /run/munge/munged.pid /run/munge/munge.socket.2*
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
fi
for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null || { say "munged does not answer"; exit 1; }

# ------------------------------------------------------------------------------ configuration
HOST=$(hostname -s)
# slurmd -C: "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=23000"
NODE=$(slurmd -C | head -n 1)
case "$NODE" in NodeName=*) ;; *) say "unexpected output of slurmd -C: $NODE"; exit 1 ;; esac

conf=$(cat <<CONF
# Written by .ci/slurm/start-local-cluster.sh: a single-node test cluster on localhost.
ClusterName=$CLUSTER
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
MpiDefault=none
# pgid, not linuxproc: a cancelled or requeued batch script's shell dies first, and its children
# (Snakemake's jobstep, which catches SIGTERM) are reparented to PID 1, where linuxproc loses them.
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=$MIN_JOB_AGE
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
StateSaveLocation=$SPOOL/slurmctld
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=$RUN_DIR/slurmctld.pid
SlurmdPidFile=$RUN_DIR/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
$NODE Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
)
gres="NodeName=$HOST Name=gpu File=/dev/null"

mkdir -p "$CONF_DIR"
changed=
if [ "$(cat "$CONF_DIR/slurm.conf" 2>/dev/null)" != "$conf" ]; then echo "$conf" >"$CONF_DIR/slurm.conf"; changed=1; fi
if [ "$(cat "$CONF_DIR/gres.conf" 2>/dev/null)" != "$gres" ]; then echo "$gres" >"$CONF_DIR/gres.conf"; changed=1; fi
if [ -n "$changed" ] && { alive "$RUN_DIR/slurmctld.pid" || alive "$RUN_DIR/slurmd.pid"; }; then
    say "configuration changed: restarting the daemons"
    for pidfile in "$RUN_DIR/slurmd.pid" "$RUN_DIR/slurmctld.pid"; do
        alive "$pidfile" && kill "$(cat "$pidfile")"
        for _ in $(seq 100); do alive "$pidfile" || break; sleep 0.1; done
    done
fi

# ------------------------------------------------------------------------------ daemons
logs() { tail -n 30 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 2>/dev/null || true; }
if ! alive "$RUN_DIR/slurmctld.pid"; then
    started=1
    slurmctld || { logs; say "slurmctld did not start"; exit 1; }
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.2; done
scontrol ping | grep -q UP || { logs; say "slurmctld does not answer"; exit 1; }
if ! alive "$RUN_DIR/slurmd.pid"; then
    started=1
    slurmd || { logs; say "slurmd did not start"; exit 1; }
fi

# Wait for the node; resume it if an earlier run left it down or drained.
state=
for _ in $(seq 150); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -n 1)
    case "$state" in
        idle|mixed|allocated|completing) break ;;
        down*|drain*|fail*) scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true ;;
    esac
    sleep 0.2
done
case "$state" in
    idle|mixed|allocated|completing) ;;
    *) logs; sinfo -N -l >&2 || true; say "node $HOST is '$state', not idle"; exit 1 ;;
esac
[ -n "$started" ] || say "already running"
say "cluster $CLUSTER is up: node $HOST ($state), partition $PARTITION, $(echo "$NODE" | grep -o 'CPUs=[0-9]*') $(echo "$NODE" | grep -o 'RealMemory=[0-9]*'), gres gpu:1"
