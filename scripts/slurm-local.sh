#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the tests of `rankcode sweep --slurm`
# (tests/slurm.rs): `scripts/slurm-local.sh start` installs Debian's slurm-wlm and munge
# if missing (as root or with sudo), writes a minimal /etc/slurm/slurm.conf for
# localhost (no cgroups: proctrack/linuxproc, task/none), starts munged, slurmctld and
# slurmd, and waits until the node is idle; `scripts/slurm-local.sh stop` stops the
# daemons it started. Its state lives in $RANKCODE_SLURM_DIR (default
# /tmp/rankcode-slurm). It refuses to replace a slurm.conf that it did not write.
set -euo pipefail

state=${RANKCODE_SLURM_DIR:-/tmp/rankcode-slurm}
conf=/etc/slurm/slurm.conf
marker="# written by rankcode scripts/slurm-local.sh"
sudo_cmd=""
[ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
        && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        return
    fi
    echo "slurm-local: installing slurm-wlm and munge" >&2
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        slurm-wlm munge >/dev/null
}

write_config() {
    if [ -e "$conf" ] && ! grep -qF "$marker" "$conf"; then
        echo "slurm-local: $conf exists and was not written by this script; not replacing it" >&2
        exit 1
    fi
    local host cpus
    host=$(hostname -s)
    cpus=$(nproc)
    $sudo_cmd mkdir -p /etc/slurm "$state/ctld" "$state/d"
    $sudo_cmd tee "$conf" >/dev/null <<EOF
$marker: a one-node cluster on localhost
ClusterName=rankcode-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerParameters=sched_interval=1
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
        return
    fi
    $sudo_cmd mkdir -p /run/munge /var/log/munge /var/lib/munge
    if [ ! -s /etc/munge/munge.key ]; then
        $sudo_cmd mungekey --create --force
    fi
    $sudo_cmd chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
    # munged writes its pid to /run/munge/munged.pid, as the munge user where there is one.
    if id munge >/dev/null 2>&1; then
        $sudo_cmd su -s /bin/sh munge -c munged 2>/dev/null || $sudo_cmd munged --force
    else
        $sudo_cmd munged --force
    fi
    echo started | $sudo_cmd tee "$state/munged.started" >/dev/null
}

wait_idle() {
    for _ in $(seq 1 60); do
        if [ "$(sinfo -h -o %t 2>/dev/null | head -1)" = "idle" ]; then
            return
        fi
        sleep 1
    done
    echo "slurm-local: the node is not idle after 60 s:" >&2
    sinfo >&2 || true
    tail -n 20 "$state/slurmctld.log" "$state/slurmd.log" >&2 || true
    exit 1
}

start() {
    install
    $sudo_cmd mkdir -p "$state"
    write_config
    start_munge
    $sudo_cmd slurmctld
    $sudo_cmd slurmd
    wait_idle
    echo "slurm-local: node $(hostname -s) idle with $(nproc) CPUs (state in $state)" >&2
}

# Ends the process whose id is in $1, if it is alive, and waits for it.
stop_pid() {
    [ -s "$1" ] || return 0
    local pid
    pid=$(cat "$1")
    if kill -0 "$pid" 2>/dev/null; then
        $sudo_cmd kill "$pid"
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
    fi
    $sudo_cmd rm -f "$1"
}

stop() {
    stop_pid "$state/slurmd.pid"
    stop_pid "$state/slurmctld.pid"
    if [ -e "$state/munged.started" ]; then
        stop_pid /run/munge/munged.pid
        $sudo_cmd rm -f "$state/munged.started"
    fi
    echo "slurm-local: stopped" >&2
}

case "${1:-}" in
start) start ;;
stop) stop ;;
*)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
