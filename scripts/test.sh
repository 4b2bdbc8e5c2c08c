#!/usr/bin/env bash
# The whole test suite, as CI runs it: builds the binaries the integration tests start (xtests finds them
# next to its test executables), makes sure kubectl v1.34 is there, then runs every test of the workspace.
# Extra arguments go to `cargo test` (e.g. `scripts/test.sh -p xtests`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
  export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "error: no cargo: run scripts/install-deps.sh (as root) first" >&2; exit 1; }
[ -n "${KNET_KUBECTL:-}" ] || scripts/install-kubectl.sh
# Every test binary uses this kubectl (never an older one on PATH).
export KNET_KUBECTL="${KNET_KUBECTL:-$root/target/tools/kubectl}"
cargo build --workspace --bins
cargo test --workspace "$@"
