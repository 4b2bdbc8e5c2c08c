#!/usr/bin/env bash
# Brings up a worker host: IP forwarding, the node agent's directories and resolv.conf, then knet-node-agent.
#
# Environment (besides common.sh's):
#   KNET_NODE_NAME     the Node's name (worker-N)
#   KNET_NODE_IP       its InternalIP
#   KNET_KUBECONFIG    its kubeconfig (user system:node:NAME)
#   KNET_CNI_PLUGIN    knet-cni or bridge (Debian's reference plugins)
#   KNET_BACKEND       host-gw or vxlan
#   KNET_NAMESERVER    the upstream DNS server pods with dnsPolicy Default use (the outside host)
#   KNET_CNI_BIN_DIRS  the CNI plugin path (default: KNET_BIN_DIR,/usr/lib/cni)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${KNET_NODE_NAME:?}" "${KNET_NODE_IP:?}" "${KNET_KUBECONFIG:?}" "${KNET_NAMESERVER:?}"

set_sysctl net.ipv4.ip_forward 1
set_sysctl net.ipv4.conf.all.rp_filter 0

mkdir -p "$KNET_HOST_DIR/cni/net.d"
resolv=$KNET_HOST_DIR/resolv.conf
echo "nameserver $KNET_NAMESERVER" >"$resolv"

start node-agent "$KNET_BIN_DIR/knet-node-agent" --kubeconfig "$KNET_KUBECONFIG" --node-name "$KNET_NODE_NAME" \
  --node-ip "$KNET_NODE_IP" --root-dir "$KNET_HOST_DIR" --cni-conf-dir "$KNET_HOST_DIR/cni/net.d" \
  --cni-bin-dir "${KNET_CNI_BIN_DIRS:-$KNET_BIN_DIR,/usr/lib/cni}" --cni-plugin "${KNET_CNI_PLUGIN:-knet-cni}" \
  --backend "${KNET_BACKEND:-host-gw}" --resolv-conf "$resolv" --healthz-bind-address 127.0.0.1:10248
log "node agent for $KNET_NODE_NAME started"
