#!/usr/bin/env bash
# Start, stop or inspect a one-node Slurm cluster on this machine, for testing
# the Slurm profile (profiles/slurm) without a real cluster.
#
#   scripts/slurm-cluster.sh start    install slurm-wlm and munge if missing (root),
#                                     write the configs, start munged, slurmctld
#                                     and slurmd, wait until the node is idle
#   scripts/slurm-cluster.sh stop     stop the daemons that `start` launched
#   scripts/slurm-cluster.sh status   print sinfo and the daemons' pids
#
# The cluster has one node, "localhost" (127.0.0.1), with this machine's CPU
# count and memory as `slurmd -C` measures them, and one partition, "debug".
# Both daemons bind to 127.0.0.1 only (CommunicationParameters=NoCtldInAddrAny,
# NoInAddrAny). There is no accounting database, so `sacct` does not work: the
# profile's status command is squeue, and finished jobs are recorded by the
# filetxt job-completion plugin in $EQUIPIPE_SLURM_DIR/log/jobcomp.log.
#
# `start` is idempotent: it returns at once when its cluster is already up.
# It writes /etc/slurm/slurm.conf (the path every Slurm client reads) and
# refuses to overwrite one that this script did not write.
set -euo pipefail

STATE_DIR="${EQUIPIPE_SLURM_DIR:-/var/lib/equipipe-slurm}"
SLURM_CONF="/etc/slurm/slurm.conf"
MARKER="# Written by equipipe scripts/slurm-cluster.sh"
NODE="localhost"
PARTITION="debug"
START_TIMEOUT_S="${EQUIPIPE_SLURM_START_TIMEOUT:-60}"

log() { echo "slurm-cluster: $*" >&2; }
die() { log "error: $*"; exit 1; }

pid_alive() {
    local pidfile="$1"
    [[ -s "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    if ((${#missing[@]} == 0)); then
        return
    fi
    if [[ $(id -u) -ne 0 ]]; then
        die "missing ${missing[*]}; run as root so that apt-get can install slurm-wlm and munge"
    fi
    log "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # slurm-wlm is Debian's metapackage for slurmctld, slurmd and slurm-client;
    # its recommended plugin packages (databases, GPUs) are not needed here.
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
}

start_munge() {
    if [[ ! -s /etc/munge/munge.key ]]; then
        log "writing a new munge key"
        mkdir -p /etc/munge
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge /etc/munge/munge.key
    chmod 700 /etc/munge
    chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    chmod 755 /run/munge
    if pid_alive /run/munge/munged.pid; then
        return
    fi
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged
    touch "$STATE_DIR/started-munged"
    for _ in $(seq 50); do
        munge -n >/dev/null 2>&1 && return
        sleep 0.1
    done
    die "munged did not respond within 5 s; see /var/log/munge/munged.log"
}

write_config() {
    if [[ -e "$SLURM_CONF" ]] && ! grep -qF "$MARKER" "$SLURM_CONF"; then
        die "$SLURM_CONF exists and was not written by this script; move it away or use that cluster"
    fi
    # slurmd -C prints this machine's layout, e.g.
    # "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
    local hardware
    hardware="$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')"
    [[ "$hardware" == CPUs=* ]] || die "could not read the node layout from 'slurmd -C': $hardware"
    mkdir -p "$(dirname "$SLURM_CONF")" "$STATE_DIR"/{ctld,slurmd,log}
    cat >"$SLURM_CONF" <<EOF
$MARKER: a one-node test cluster on 127.0.0.1.
ClusterName=equipipe-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE_DIR/log/jobcomp.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
# Finished jobs stay visible to squeue for this long; the Slurm executor
# plugin needs at least three status-check intervals to read their state.
MinJobAge=600
StateSaveLocation=$STATE_DIR/ctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd.pid
SlurmctldLogFile=$STATE_DIR/log/slurmctld.log
SlurmdLogFile=$STATE_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE $hardware State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

wait_for_idle_node() {
    local state=""
    for _ in $(seq "$START_TIMEOUT_S"); do
        state="$(sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null || true)"
        case "$state" in
            idle | mixed | allocated) return ;;
        esac
        sleep 1
    done
    die "node $NODE is '$state' after ${START_TIMEOUT_S} s, not idle; see $STATE_DIR/log/"
}

start() {
    if sinfo --noheader --nodes="$NODE" --format=%T 2>/dev/null | grep -qE '^(idle|mixed|allocated)$' \
        && pid_alive "$STATE_DIR/slurmctld.pid"; then
        log "already running"
        return
    fi
    install_packages
    [[ $(id -u) -eq 0 ]] || die "starting the daemons needs root"
    mkdir -p "$STATE_DIR"
    start_munge
    write_config
    if ! pid_alive "$STATE_DIR/slurmctld.pid"; then
        log "starting slurmctld"
        # -c: start without state from an earlier run (jobs, node states).
        slurmctld -c
    fi
    if ! pid_alive "$STATE_DIR/slurmd.pid"; then
        log "starting slurmd"
        slurmd -N "$NODE"
    fi
    wait_for_idle_node
    log "node $NODE is idle in partition $PARTITION"
}

stop_daemon() {
    local name="$1" pidfile="$2"
    if pid_alive "$pidfile"; then
        local pid
        pid="$(cat "$pidfile")"
        log "stopping $name (pid $pid)"
        kill "$pid"
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || return 0
            sleep 0.1
        done
        log "$name (pid $pid) still running after 10 s"
    fi
}

stop() {
    stop_daemon slurmd "$STATE_DIR/slurmd.pid"
    stop_daemon slurmctld "$STATE_DIR/slurmctld.pid"
    if [[ -e "$STATE_DIR/started-munged" ]]; then
        stop_daemon munged /run/munge/munged.pid
        rm -f "$STATE_DIR/started-munged"
    fi
}

status() {
    sinfo || true
    for name in slurmctld slurmd; do
        if pid_alive "$STATE_DIR/$name.pid"; then
            echo "$name: running (pid $(cat "$STATE_DIR/$name.pid"))"
        else
            echo "$name: not running"
        fi
    done
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 start|stop|status" >&2
        exit 2
        ;;
esac
