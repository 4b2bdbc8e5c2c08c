#!/usr/bin/env bash
# Brings up a control-plane host: knet-apiserver, one kubeconfig per worker (user system:node:NAME in group
# system:nodes), then knet-controllers.
#
# Environment (besides common.sh's):
#   KNET_NODE_IP             the address the API server binds and advertises
#   KNET_API_PORT            its port (6443)
#   KNET_ADMIN_KUBECONFIG    where the admin kubeconfig goes
#   KNET_WORKERS             worker names, space separated
#   KNET_KUBECONFIG_DIR      where the workers' kubeconfigs go (NAME.kubeconfig)
#   KNET_CLUSTER_CIDR        the pod CIDR (10.244.0.0/16)
#   KNET_SERVICE_CIDR        the Service CIDR (10.96.0.0/16)
#   KNET_LB_POOL             the LoadBalancer address pool
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${KNET_NODE_IP:?}" "${KNET_ADMIN_KUBECONFIG:?}" "${KNET_KUBECONFIG_DIR:?}"
port=${KNET_API_PORT:-6443}
data_dir=$KNET_HOST_DIR/apiserver
server=https://$KNET_NODE_IP:$port
mkdir -p "$data_dir" "$KNET_KUBECONFIG_DIR"

set_sysctl net.ipv4.ip_forward 1

start apiserver "$KNET_BIN_DIR/knet-apiserver" --data-dir "$data_dir" --bind-address "$KNET_NODE_IP" \
  --secure-port "$port" --admin-kubeconfig "$KNET_ADMIN_KUBECONFIG" \
  --service-cluster-ip-range "${KNET_SERVICE_CIDR:-10.96.0.0/16}"
wait_for 60 "the API server's /readyz at $server" curl -fsk "$server/readyz"
wait_for 10 "the admin kubeconfig" test -s "$KNET_ADMIN_KUBECONFIG"

for worker in ${KNET_WORKERS:-}; do
  "$KNET_BIN_DIR/knet-apiserver" kubeconfig --data-dir "$data_dir" --user "system:node:$worker" \
    --group system:nodes --server "$server" --out "$KNET_KUBECONFIG_DIR/$worker.kubeconfig"
done

start controllers "$KNET_BIN_DIR/knet-controllers" --kubeconfig "$KNET_ADMIN_KUBECONFIG" \
  --cluster-cidr "${KNET_CLUSTER_CIDR:-10.244.0.0/16}" --load-balancer-ip-pool "${KNET_LB_POOL:?}"
log "control plane up at $server"
