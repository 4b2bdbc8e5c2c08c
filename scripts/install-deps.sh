#!/usr/bin/env bash
# Installs what building and testing knet needs on a Debian machine: apt packages, a Rust toolchain (rustup)
# if there is no cargo, and kubectl v1.34 (scripts/install-kubectl.sh). Idempotent; run as root (apt).
#
# Environment: KNET_RUST_COMPONENTS="rustfmt clippy" also installs those rustup components (CI does).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# What the build, the lab and the tests use: the kernel datapath's tools (iproute2, nftables, conntrack),
# nsenter/unshare (util-linux), Debian's reference CNI plugins (interop tests and the CNI benchmark), the programs
# behind the image catalog (busybox, nginx, curl), the probes the tests run (dig, iperf3, socat) and shellcheck
# for the lab's host scripts.
packages=(build-essential ca-certificates curl jq openssl python3 python3-pip
  iproute2 nftables conntrack util-linux procps kmod
  containernetworking-plugins busybox nginx bind9-dnsutils iperf3 socat shellcheck)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing Debian packages (${missing[*]}); run this as root" >&2
    exit 1
  fi
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # Packages with daemons (nginx, iperf3) must not start them on the machine itself: knet runs its own copies
  # inside pods. policy-rc.d is Debian's switch for that (exit 101: "action forbidden").
  own_policy=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -z "$own_policy" ] || rm -f /usr/sbin/policy-rc.d
else
  echo "Debian packages present: ${packages[*]}"
fi

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
  echo "installing the Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  export PATH="$HOME/.cargo/bin:$PATH"
fi
echo "$(cargo --version)"
for component in ${KNET_RUST_COMPONENTS:-}; do
  if command -v rustup >/dev/null; then
    rustup component add "$component"
  fi
done

"$root/scripts/install-kubectl.sh"
