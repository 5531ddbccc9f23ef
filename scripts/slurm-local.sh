#!/usr/bin/env bash
# A single-node SLURM on 127.0.0.1, for ginv's `slurm` tests and for trying `--executor slurm`.
# Usage: scripts/slurm-local.sh start|stop|status     (as root, as CI runs it)
#
# start  installs Debian's slurm-wlm and munge with apt when missing, writes a minimal
#        /etc/slurm/slurm.conf (select/cons_tres, this machine's real CPU count and memory from
#        `slurmd -C`, one partition `debug`), starts munged, slurmctld and slurmd, and waits
#        until sinfo shows the node idle. Idempotent: a running cluster is left as it is.
# stop   cancels every job, stops the three daemons (by their pid files) and checks that no
#        slurm or munge process is left; exit status 1 if one is.
# status prints whether the cluster answers (exit 0) or not (exit 1).
set -euo pipefail

CONF=/etc/slurm/slurm.conf
LOGS=/var/log/slurm
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
MUNGE_PID=/run/munge/munged.pid
NODE=localhost

log() { printf 'slurm-local: %s\n' "$*" >&2; }

answers() { timeout 10 sinfo -h -o '%t' 2>/dev/null | grep -qE '^(idle|mix|alloc)'; }

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v munged >/dev/null && command -v sbatch >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || { log "slurm-wlm and munge are missing; run as root to install them"; exit 1; }
    log "installing slurm-wlm and munge with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

write_conf() {
    # the node as slurmd sees it (CPUs, sockets, cores, threads, RealMemory), renamed to $NODE
    local node
    node=$(slurmd -C | head -1 | sed -E "s/^NodeName=[^ ]+/NodeName=$NODE NodeAddr=127.0.0.1/")
    mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOGS"
    cat >"$CONF" <<EOF
# Written by ginv's scripts/slurm-local.sh: one node on 127.0.0.1, for tests.
ClusterName=ginv-local
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# no cgroups in a container: plain process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
# finished jobs stay visible to squeue for an hour; a cancelled job is killed 5 s after SIGTERM
MinJobAge=3600
KillWait=5
SchedulerParameters=sched_interval=2
$node State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if [ -f "$MUNGE_PID" ] && kill -0 "$(cat "$MUNGE_PID")" 2>/dev/null; then return; fi
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then mungekey --create --keyfile=/etc/munge/munge.key; fi
    chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge
    chmod 700 /etc/munge && chmod 400 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged
}

start() {
    if answers; then log "already running"; status; return; fi
    install
    [ "$(id -u)" = 0 ] || { log "start needs root"; exit 1; }
    write_conf
    start_munge
    if ! { [ -f "$CTLD_PID" ] && kill -0 "$(cat "$CTLD_PID")" 2>/dev/null; }; then
        slurmctld -c   # -c: a clean state, no jobs or node states from an earlier cluster
    fi
    if ! { [ -f "$SLURMD_PID" ] && kill -0 "$(cat "$SLURMD_PID")" 2>/dev/null; }; then
        slurmd -N "$NODE"
    fi
    for _ in $(seq 60); do
        if answers; then status; return; fi
        sleep 1
    done
    log "the node did not come up within 60 s; see $LOGS"
    sinfo -N -l >&2 || true
    tail -5 "$LOGS/slurmctld.log" "$LOGS/slurmd.log" >&2 || true
    exit 1
}

stop_daemon() {  # stop_daemon PIDFILE NAME
    local pid
    [ -f "$1" ] || return 0
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then log "$2 ($pid) ignores SIGTERM; killing it"; kill -9 "$pid"; fi
    fi
    rm -f "$1"
}

stop() {
    if answers; then
        squeue -h -o %i | xargs -r scancel 2>/dev/null || true
        for _ in $(seq 30); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 1; done
    fi
    stop_daemon "$SLURMD_PID" slurmd
    stop_daemon "$CTLD_PID" slurmctld
    stop_daemon "$MUNGE_PID" munged
    # job steps of the daemons just stopped (slurmstepd), should any have outlived them
    local steps
    steps=$(pgrep -x slurmstepd || true)
    if [ -n "$steps" ]; then log "ending leftover job steps: $steps"; kill -9 $steps 2>/dev/null || true; sleep 1; fi
    local left="" name
    for name in slurmctld slurmscriptd slurmd slurmstepd munged; do
        left+=$(pgrep -a -x "$name" || true)
    done
    if [ -n "$left" ]; then log "still running: $left"; exit 1; fi
    log "stopped; no slurm or munge process left"
}

status() {
    if answers; then
        echo "slurm-local: the cluster answers"
        sinfo -N -o '%N %t cpus=%c mem=%mMB partition=%P'
    else
        echo "slurm-local: no cluster answers"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
