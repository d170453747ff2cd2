#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, without systemd (Debian's slurmctld, slurmd,
# slurm-client and munge), for running `cargo xtask sweep submit --slurm` here and in CI.
#
#   scripts/slurm-local.sh install   # apt-get the packages (root or sudo)
#   scripts/slurm-local.sh start     # munged + slurmctld + slurmd, waits until the node is idle
#   scripts/slurm-local.sh env       # prints `export SLURM_CONF=…` for client commands
#   scripts/slurm-local.sh stop      # stops the daemons by PID
#
# Everything (config, state, spool, logs, pid files) lives in $SLURM_LOCAL_DIR
# (default /tmp/smoluchowski-slurm). On a real cluster none of this is needed.
set -euo pipefail

DIR="${SLURM_LOCAL_DIR:-/tmp/smoluchowski-slurm}"
CONF="$DIR/slurm.conf"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

install_packages() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
    && command -v munged >/dev/null; then
    return
  fi
  $SUDO apt-get update -qq
  # The packages try to start their services through systemd; that fails harmlessly here.
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    slurmctld slurmd slurm-client munge >/dev/null || true
  command -v slurmctld >/dev/null || { echo "slurm-local: slurmctld did not install" >&2; exit 1; }
}

write_conf() {
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  local host node
  host="$(hostname -s)"
  # The node's real sizes (CPUs, sockets, cores, memory) as slurmd sees them.
  node="$(slurmd -C | head -n 1)"
  cat >"$CONF" <<CONF
ClusterName=smoluchowski
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
$node State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  install_packages
  write_conf
  if [ ! -s /etc/munge/munge.key ]; then
    $SUDO install -d -o munge -g munge -m 0700 /etc/munge
    $SUDO dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    $SUDO chown munge:munge /etc/munge/munge.key
    $SUDO chmod 0400 /etc/munge/munge.key
  fi
  $SUDO install -d -o munge -g munge /run/munge
  if ! pgrep -x munged >/dev/null; then
    $SUDO runuser -u munge -- /usr/sbin/munged
  fi
  export SLURM_CONF="$CONF"
  # -i: ignore any saved state; both daemonise and write their pid files under $DIR.
  $SUDO env SLURM_CONF="$CONF" slurmctld -i
  $SUDO env SLURM_CONF="$CONF" slurmd
  for _ in $(seq 1 60); do
    if sinfo -h -o '%t' 2>/dev/null | grep -qx 'idle'; then
      echo "slurm-local: node idle (SLURM_CONF=$CONF)"
      return
    fi
    sleep 1
  done
  echo "slurm-local: the node did not become idle in 60 s; logs in $DIR/log" >&2
  sinfo >&2 || true
  exit 1
}

stop() {
  for d in slurmd slurmctld; do
    if [ -s "$DIR/$d.pid" ]; then
      $SUDO kill "$(cat "$DIR/$d.pid")" 2>/dev/null || true
      rm -f "$DIR/$d.pid"
    fi
  done
  if [ -s /run/munge/munged.pid ]; then
    $SUDO kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
  fi
  echo "slurm-local: stopped"
}

case "${1:-}" in
  install) install_packages ;;
  start) start ;;
  stop) stop ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 install|start|env|stop" >&2; exit 2 ;;
esac
