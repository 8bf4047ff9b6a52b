#!/usr/bin/env bash
# Stop the cluster of start-local-cluster.sh: cancel its jobs, then end slurmd, slurmctld and
# munged by their PID files, and remove the slurm.conf it wrote. Idempotent: daemons that are not
# running are skipped.
set -uo pipefail

RUN_DIR=/run/aimed-slurm

say() { echo "stop-local-cluster: $*" >&2; }
# A daemon is alive when its PID file names a running process (not a zombie: nothing here reaps them).
alive() {
    local pid state
    pid=$(cat "$1" 2>/dev/null) && [ -n "$pid" ] || return 1
    state=$(ps -o stat= -p "$pid" 2>/dev/null) || return 1
    case "$state" in Z*) return 1 ;; esac
}

stop() {  # stop PIDFILE NAME
    local pidfile=$1 name=$2
    if ! alive "$pidfile"; then rm -f "$pidfile"; return 0; fi
    kill "$(cat "$pidfile")"
    for _ in $(seq 100); do alive "$pidfile" || { rm -f "$pidfile"; say "stopped $name"; return 0; }; sleep 0.1; done
    kill -9 "$(cat "$pidfile")" 2>/dev/null
    rm -f "$pidfile"
    say "killed $name"
}

# Jobs still running would outlive slurmd (slurmstepd runs on): cancel them first.
if alive "$RUN_DIR/slurmctld.pid"; then
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ')
    if [ -n "${jobs// }" ]; then
        say "cancelling jobs $jobs"
        scancel $jobs 2>/dev/null
        for _ in $(seq 100); do [ -z "$(squeue -h -t running,completing -o %A 2>/dev/null)" ] && break; sleep 0.2; done
    fi
fi
stop "$RUN_DIR/slurmd.pid" slurmd
stop "$RUN_DIR/slurmctld.pid" slurmctld
stop /run/munge/munged.pid munged
# With a slurm.conf naming a stopped controller, every `scontrol` waits 10 s for it, and
# snakemake-executor-plugin-slurm calls `scontrol show config` at each Snakemake start-up (even
# `snakemake --version`). Without one, scontrol fails at once. start-local-cluster.sh writes it again.
if head -n 1 /etc/slurm/slurm.conf 2>/dev/null | grep -q '^# Written by .ci/slurm/start-local-cluster.sh'; then
    rm -f /etc/slurm/slurm.conf
    say "removed /etc/slurm/slurm.conf"
fi
exit 0
