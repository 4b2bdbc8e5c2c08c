#!/usr/bin/env bash
# Brings up the outside host ("the internet"): no forwarding, an HTTP server on :80 answering the client's
# source IP and a DNS server on :53 answering example.com and a few names with this host's address.
#
# Environment (besides common.sh's):
#   KNET_NODE_IP   this host's address (the DNS answers)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

: "${KNET_NODE_IP:?}"
set_sysctl net.ipv4.ip_forward 0

start http "$KNET_BIN_DIR/knet-lab" serve-http --listen 0.0.0.0:80
start dns "$KNET_BIN_DIR/knet-lab" serve-dns --listen 0.0.0.0:53 --address "$KNET_NODE_IP"
wait_for 10 "the HTTP server on :80" curl -fs "http://$KNET_NODE_IP/"
log "outside host up at $KNET_NODE_IP"
