#!/usr/bin/env bash
# Stop the single-node Slurm test cluster started by .ci/slurm-up.sh.
#
# Stops slurmd, then slurmctld, by the PIDs in their pid files under
# ${RLSCALE_SLURM_DIR:-/tmp/rlscale-slurm}/run. munged is left running
# (harmless, and it makes the next slurm-up faster). Idempotent: a missing pid
# file or a dead PID is not an error. State and logs are kept, so a later
# slurm-up.sh recovers the node (and finished-job records) from them.
set -euo pipefail

SLURM_DIR="${RLSCALE_SLURM_DIR:-/tmp/rlscale-slurm}"

log() { echo "slurm-down: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
as_root() { "${SUDO[@]}" "$@"; }

# Stop the process named in a pid file: SIGTERM, wait up to 10 s, then SIGKILL.
# Only a PID whose command line matches the expected daemon is signalled, so a
# stale pid file cannot make us kill an unrelated process that reused the PID.
stop_daemon() {
    local name="$1" pidfile="$SLURM_DIR/run/$1.pid" pid
    if ! as_root test -f "$pidfile"; then
        log "$name: no pid file, not running"
        return 0
    fi
    pid="$(as_root cat "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ] && as_root kill -0 "$pid" 2>/dev/null \
       && as_root grep -qa "$name" "/proc/$pid/cmdline" 2>/dev/null; then
        log "stopping $name (pid $pid)"
        as_root kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do
            as_root kill -0 "$pid" 2>/dev/null || break
            sleep 0.25
        done
        if as_root kill -0 "$pid" 2>/dev/null; then
            log "$name did not exit after 10 s; sending SIGKILL"
            as_root kill -KILL "$pid" 2>/dev/null || true
        fi
    else
        log "$name: pid file is stale, nothing to stop"
    fi
    as_root rm -f "$pidfile"
}

stop_daemon slurmd
stop_daemon slurmctld
log "done"
