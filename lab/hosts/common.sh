# shellcheck shell=bash
# Shared by the per-host bring-up scripts. Sourced, not run.
#
# Environment (set by knet-lab, or by a VM's provisioning):
#   KNET_BIN_DIR      where the knet binaries are
#   KNET_HOST_DIR     this host's state dir (logs in log/, pid files in run/)
#   KNET_SUPERVISOR   background (default: detached processes with pid files) or systemd (one unit each)
set -euo pipefail

: "${KNET_BIN_DIR:?KNET_BIN_DIR is not set}"
: "${KNET_HOST_DIR:?KNET_HOST_DIR is not set}"
KNET_SUPERVISOR=${KNET_SUPERVISOR:-background}

mkdir -p "$KNET_HOST_DIR/log" "$KNET_HOST_DIR/run"

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*"; }

# set_sysctl KEY VALUE: sets a (network namespace) sysctl.
set_sysctl() {
  sysctl -q -w "$1=$2"
}

# start NAME PROGRAM ARGS…: runs a long-lived process the way KNET_SUPERVISOR says.
start() {
  local name=$1
  shift
  case "$KNET_SUPERVISOR" in
    background)
      # setsid: its own session, so it outlives this script and knet-lab; stdin closed, output to a log.
      setsid "$@" </dev/null >>"$KNET_HOST_DIR/log/$name.log" 2>&1 &
      echo $! >"$KNET_HOST_DIR/run/$name.pid"
      log "started $name (pid $!)"
      ;;
    systemd)
      local unit="knet-$name.service"
      {
        echo "[Unit]"
        echo "Description=knet $name"
        echo "After=network-online.target"
        echo "[Service]"
        printf 'ExecStart='
        printf '%q ' "$@"
        echo
        echo "Restart=always"
        echo "RestartSec=2"
        echo "[Install]"
        echo "WantedBy=multi-user.target"
      } >"/etc/systemd/system/$unit"
      systemctl daemon-reload
      systemctl enable --now "$unit"
      log "started $unit"
      ;;
    *)
      echo "error: KNET_SUPERVISOR must be background or systemd, not $KNET_SUPERVISOR" >&2
      exit 1
      ;;
  esac
}

# wait_for SECONDS DESCRIPTION COMMAND…: retries COMMAND every 0.2 s until it succeeds.
wait_for() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "error: timed out after ${seconds}s waiting for $what" >&2
      return 1
    fi
    sleep 0.2
  done
}
