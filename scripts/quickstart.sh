#!/usr/bin/env bash
# knet's first command: installs what is missing, builds, and starts knet-apiserver on
# https://127.0.0.1:6443 in the background, then prints how to use kubectl with it.
# (Later issues make it bring up the whole lab and run the demo.)
#
#   scripts/quickstart.sh          install, build, (re)start the API server
#   scripts/quickstart.sh stop     stop it
#
# Environment: KNET_BIND_ADDRESS (default 127.0.0.1), KNET_SECURE_PORT (default 6443),
# KNET_STATE_DIR (default target/knet: data directory, kubeconfig, log, pid file).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bind=${KNET_BIND_ADDRESS:-127.0.0.1}
port=${KNET_SECURE_PORT:-6443}
state=${KNET_STATE_DIR:-$root/target/knet}
pidfile=$state/knet-apiserver.pid
kubeconfig=$state/admin.kubeconfig
log=$state/knet-apiserver.log

stop() {
  if [ -f "$pidfile" ]; then
    local pid
    pid=$(cat "$pidfile")
    # Only stop the process we started: check that the pid still runs knet-apiserver.
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = knet-apiserver ]; then
      echo "stopping knet-apiserver (pid $pid)"
      kill "$pid"
      for _ in $(seq 1 100); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
      done
      [ ! -d "/proc/$pid" ] || kill -9 "$pid"
    fi
    rm -f "$pidfile"
  fi
}

if [ "${1:-}" = stop ]; then
  stop
  exit 0
fi

echo "=== installing what is missing"
scripts/install-deps.sh
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi

echo "=== building"
cargo build --workspace --bins

echo "=== starting knet-apiserver"
stop
mkdir -p "$state"
nohup setsid "$root/target/debug/knet-apiserver" \
  --data-dir "$state/apiserver" --bind-address "$bind" --secure-port "$port" \
  --admin-kubeconfig "$kubeconfig" >>"$log" 2>&1 </dev/null &
echo $! >"$pidfile"

host=$bind
case "$host" in 0.0.0.0 | ::) host=127.0.0.1 ;; esac
case "$host" in *:*) host="[$host]" ;; esac
for _ in $(seq 1 300); do
  if [ -f "$state/apiserver/ca.crt" ] &&
    curl -fsS --cacert "$state/apiserver/ca.crt" "https://$host:$port/readyz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "error: knet-apiserver exited; the end of its log ($log):" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
  sleep 0.1
done
curl -fsS --cacert "$state/apiserver/ca.crt" "https://$host:$port/readyz" >/dev/null || {
  echo "error: knet-apiserver is not ready after 30 s; see $log" >&2
  exit 1
}

cat <<MSG

knet-apiserver is serving https://$host:$port (pid $(cat "$pidfile"), log $log).
Use the real kubectl v1.34 with it:

  export KUBECONFIG=$kubeconfig
  export PATH=$root/target/tools:\$PATH
  kubectl get namespaces

Stop it with: scripts/quickstart.sh stop
MSG
