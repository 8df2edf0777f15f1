#!/usr/bin/env bash
# Bring up a real single-node Slurm cluster on localhost for the test suite/CI.
#
# Idempotent: if `sinfo` already answers and the node is usable, exit 0 at once.
# Otherwise: install slurm-wlm + munge (apt-get, only when missing), start
# munged, write slurm.conf into the state folder, install an identical copy at
# /etc/slurm/slurm.conf (the path Debian's Slurm clients read by default, so a
# plain `sbatch`/`sinfo`/`squeue` works from any process with no environment
# variables), start slurmctld then slurmd, and wait until the node is idle.
#
# State, spool, logs and pid files live in ${RLSCALE_SLURM_DIR:-/tmp/rlscale-slurm}.
# The default partition is `debug` (MaxTime=INFINITE).
# Stop it with .ci/slurm-down.sh (munged is left running).
#
# Facts this relies on (Debian 12, Slurm 22.05, no cgroups, daemons as root):
# see ../shared/notes/slurm-on-one-machine.md (beside this repository).
set -euo pipefail

SLURM_DIR="${RLSCALE_SLURM_DIR:-/tmp/rlscale-slurm}"
CONF_DIR="$SLURM_DIR/etc"
CONF="$CONF_DIR/slurm.conf"
CLIENT_CONF=/etc/slurm/slurm.conf      # compiled-in default of Debian's Slurm
HOST="$(hostname -s)"
PARTITION=debug
WAIT_SECONDS="${RLSCALE_SLURM_WAIT:-30}"

log() { echo "slurm-up: $*" >&2; }
die() { echo "slurm-up: ERROR: $*" >&2; exit 1; }

# Daemons and system files need root; use sudo when we are not root.
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
else
    command -v sudo >/dev/null 2>&1 || die "not root and sudo is not available"
    SUDO=(sudo)
fi
as_root() { "${SUDO[@]}" "$@"; }

# Node states in which the cluster is usable (jobs of a running test may make
# the node mixed/allocated; that still counts as "up").
node_state() { timeout 5 sinfo -h -o %T 2>/dev/null | head -n1 || true; }
# slurmctld keeps reporting a dead slurmd's node as idle for SlurmdTimeout
# (300 s), so also ask the local slurmd directly (fails at once if it is dead).
slurmd_answers() { timeout 5 scontrol show slurmd >/dev/null 2>&1; }
# Cheap probe of the controller port: when nothing listens, skip `sinfo`,
# which would otherwise spend ~9 s retrying before it gives up.
ctld_port_open() { timeout 1 bash -c '</dev/tcp/127.0.0.1/6817' 2>/dev/null; }
is_usable_state() {
    case "$1" in
        idle|mixed|allocated|completing|idle~|mixed~) return 0 ;;
        *) return 1 ;;
    esac
}

# ---------------------------------------------------------------- fast path --
if command -v sinfo >/dev/null 2>&1 && ctld_port_open; then
    state="$(node_state)"
    if is_usable_state "$state" && slurmd_answers; then
        log "already up (node $HOST is $state, partition $PARTITION)"
        exit 0
    fi
fi

# ----------------------------------------------------------------- packages --
missing=()
for cmd in slurmctld slurmd sbatch munged mungekey; do
    command -v "$cmd" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing slurm-wlm munge (missing: ${missing[*]})"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
fi
export PATH="$PATH:/usr/sbin:/sbin"

# -------------------------------------------------------------------- munge --
# Key, directories and ownership; then munged running as the munge user.
as_root mkdir -p /etc/munge /run/munge /var/lib/munge /var/log/munge
if ! as_root test -s /etc/munge/munge.key; then
    log "creating munge key"
    as_root mungekey -c -k /etc/munge/munge.key
fi
as_root chown -R munge:munge /etc/munge /run/munge /var/lib/munge /var/log/munge
as_root chmod 700 /etc/munge /var/lib/munge /var/log/munge
as_root chmod 755 /run/munge
as_root chmod 400 /etc/munge/munge.key

munge_ok() { munge -n 2>/dev/null | unmunge 2>/dev/null | grep -q 'STATUS: *Success'; }
if ! munge_ok; then
    log "starting munged"
    # --force: a failed self-test means any existing socket/lock is stale.
    as_root su -s /bin/sh munge -c '/usr/sbin/munged --force' \
        || die "munged failed to start (see /var/log/munge/munged.log)"
    for _ in $(seq 1 20); do munge_ok && break; sleep 0.25; done
fi
munge_ok || {
    munge -n | unmunge || true
    as_root tail -n 20 /var/log/munge/munged.log 2>/dev/null || true
    die "'munge -n | unmunge' does not report STATUS: Success"
}

# ----------------------------------------------- stop our stale daemons, if any --
# (e.g. slurmctld alive but slurmd dead); only the PIDs in our own pid files.
stop_pidfile() {
    local pidfile="$1" pid
    as_root test -f "$pidfile" || return 0
    pid="$(as_root cat "$pidfile" 2>/dev/null || true)"
    if [ -n "$pid" ] && as_root kill -0 "$pid" 2>/dev/null \
       && as_root grep -qa "$(basename "$pidfile" .pid)" "/proc/$pid/cmdline" 2>/dev/null; then
        log "stopping stale $(basename "$pidfile" .pid) (pid $pid)"
        as_root kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 40); do as_root kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        as_root kill -9 "$pid" 2>/dev/null || true
    fi
    as_root rm -f "$pidfile"
}
stop_pidfile "$SLURM_DIR/run/slurmd.pid"
stop_pidfile "$SLURM_DIR/run/slurmctld.pid"

# ------------------------------------------------------------------- config --
as_root mkdir -p "$CONF_DIR" "$SLURM_DIR/state" "$SLURM_DIR/spool" "$SLURM_DIR/log" "$SLURM_DIR/run"
as_root chmod 755 "$SLURM_DIR" "$CONF_DIR" "$SLURM_DIR/log"

CPUS="$(nproc)"
mem_total_mb=$(( $(awk '/^MemTotal:/ {print $2}' /proc/meminfo) / 1024 ))
# Margin: 10% or 512 MB, whichever is larger (a RealMemory above what slurmd
# detects would drain the node with "Low RealMemory").
margin_mb=$(( mem_total_mb / 10 )); [ "$margin_mb" -lt 512 ] && margin_mb=512
REAL_MEM=$(( mem_total_mb - margin_mb )); [ "$REAL_MEM" -lt 1 ] && REAL_MEM=1

tmp_conf="$(mktemp)"
trap 'rm -f "$tmp_conf"' EXIT
cat >"$tmp_conf" <<EOF
# Written by .ci/slurm-up.sh (rlscale test cluster) -- do not edit by hand.
# State folder: $SLURM_DIR
ClusterName=rlscale
SlurmctldHost=$HOST(127.0.0.1)
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
as_root install -m 644 "$tmp_conf" "$CONF"

# Clients (sbatch, sinfo, squeue, scontrol...) read $CLIENT_CONF unless
# SLURM_CONF is set; install the same file there so no env var is needed.
# A pre-existing foreign config is kept as a backup once.
as_root mkdir -p "$(dirname "$CLIENT_CONF")"
if as_root test -f "$CLIENT_CONF" && ! as_root grep -q 'Written by .ci/slurm-up.sh' "$CLIENT_CONF" \
   && ! as_root test -e "$CLIENT_CONF.rlscale-backup"; then
    log "backing up existing $CLIENT_CONF to $CLIENT_CONF.rlscale-backup"
    as_root cp -p "$CLIENT_CONF" "$CLIENT_CONF.rlscale-backup"
fi
as_root install -m 644 "$tmp_conf" "$CLIENT_CONF"
# Do not let a caller's SLURM_CONF point our own checks elsewhere.
export SLURM_CONF="$CONF"

# ------------------------------------------------------------------ daemons --
show_logs() {
    local f
    for f in slurmctld slurmd; do
        echo "----- tail of $SLURM_DIR/log/$f.log -----" >&2
        as_root tail -n 30 "$SLURM_DIR/log/$f.log" >&2 2>/dev/null || echo "(no log)" >&2
    done
}

log "starting slurmctld"
as_root env SLURM_CONF="$CONF" slurmctld -f "$CONF" \
    || { show_logs; die "slurmctld failed to start"; }
# slurmd registers faster once slurmctld answers.
for _ in $(seq 1 40); do timeout 5 scontrol ping 2>/dev/null | grep -q UP && break; sleep 0.25; done
log "starting slurmd"
as_root env SLURM_CONF="$CONF" slurmd -f "$CONF" \
    || { show_logs; die "slurmd failed to start"; }

# ------------------------------------------------------------- wait for idle --
deadline=$(( SECONDS + WAIT_SECONDS ))
resume_after=$(( SECONDS + 3 ))   # give slurmd a moment to register first
resumed=0
state=""
while [ "$SECONDS" -lt "$deadline" ]; do
    state="$(node_state)"
    if is_usable_state "$state" && slurmd_answers; then
        log "up in ${SECONDS}s: node $HOST is $state, partition $PARTITION, CPUs=$CPUS RealMemory=${REAL_MEM}MB"
        log "clients read $CLIENT_CONF (copy of $CONF); logs in $SLURM_DIR/log"
        exit 0
    fi
    # A node left drained/down by an earlier run (state is kept in
    # $SLURM_DIR/state) is resumed once.
    case "$state" in
        *drain*|down*|fail*)
            if [ "$resumed" -eq 0 ] && [ "$SECONDS" -ge "$resume_after" ]; then
                log "node is '$state'; trying to resume it"
                as_root scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
                resumed=1
            fi ;;
    esac
    sleep 0.5
done

echo "slurm-up: ERROR: node $HOST not idle after ${WAIT_SECONDS}s (sinfo state: '${state:-no answer}')" >&2
timeout 5 scontrol show node "$HOST" >&2 2>/dev/null || true
show_logs
exit 1
