#!/usr/bin/env bash
# knet's first command: installs what is missing, builds, and starts knet-apiserver on
# https://127.0.0.1:6443 and knet-controllers against it in the background, then prints how to use
# kubectl with them. (Later issues make it bring up the whole lab and run the demo.)
#
#   scripts/quickstart.sh          install, build, (re)start the API server and the controllers
#   scripts/quickstart.sh stop     stop them
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
ctrl_pidfile=$state/knet-controllers.pid
ctrl_log=$state/knet-controllers.log

# stop_one NAME PIDFILE: stops the process we started, checking that the pid still runs NAME.
stop_one() {
  local name=$1 file=$2 pid
  if [ -f "$file" ]; then
    pid=$(cat "$file")
    # /proc/PID/comm holds at most 15 characters of the name.
    if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "${name:0:15}" ]; then
      echo "stopping $name (pid $pid)"
      kill "$pid"
      for _ in $(seq 1 100); do
        [ -d "/proc/$pid" ] || break
        sleep 0.1
      done
      [ ! -d "/proc/$pid" ] || kill -9 "$pid"
    fi
    rm -f "$file"
  fi
}

stop() {
  stop_one knet-controllers "$ctrl_pidfile"
  stop_one knet-apiserver "$pidfile"
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
apiserver_ready() {
  [ -f "$state/apiserver/ca.crt" ] &&
    curl -fsS --cacert "$state/apiserver/ca.crt" "https://$host:$port/readyz" >/dev/null 2>&1
}
controllers_ready() {
  curl -fsS "http://127.0.0.1:10257/readyz" >/dev/null 2>&1
}
# wait_ready NAME PIDFILE LOG CHECK: waits up to 30 s for CHECK to succeed; fails with the end of LOG if the
# process exits or is still not ready.
wait_ready() {
  local name=$1 file=$2 logfile=$3 check=$4
  for _ in $(seq 1 300); do
    if "$check"; then
      return 0
    fi
    if ! kill -0 "$(cat "$file")" 2>/dev/null; then
      echo "error: $name exited; the end of its log ($logfile):" >&2
      tail -n 30 "$logfile" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "error: $name is not ready after 30 s; see $logfile" >&2
  exit 1
}
wait_ready knet-apiserver "$pidfile" "$log" apiserver_ready

echo "=== starting knet-controllers"
nohup setsid "$root/target/debug/knet-controllers" --kubeconfig "$kubeconfig" \
  --bind-address 127.0.0.1:10257 >>"$ctrl_log" 2>&1 </dev/null &
echo $! >"$ctrl_pidfile"
wait_ready knet-controllers "$ctrl_pidfile" "$ctrl_log" controllers_ready

cat <<MSG

knet-apiserver is serving https://$host:$port (pid $(cat "$pidfile"), log $log);
knet-controllers runs against it (pid $(cat "$ctrl_pidfile"), log $ctrl_log, metrics on
http://127.0.0.1:10257/metrics). Use the real kubectl v1.34 with them:

  export KUBECONFIG=$kubeconfig
  export PATH=$root/target/tools:\$PATH
  kubectl create deployment web --image=nginx --replicas=2
  kubectl get deploy,rs,pods,ep

There are no nodes yet (the node agent is the next issue), so pods stay Pending with a FailedScheduling
event (kubectl describe pod). Stop everything with: scripts/quickstart.sh stop
MSG
