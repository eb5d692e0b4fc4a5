#!/usr/bin/env bash
# Copies Cluster API's core CRDs from the sigs.k8s.io/cluster-api module pinned in
# go.mod into config/crd/cluster-api, so the installed CRDs always match the code.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$(go list -m -f '{{.Dir}}' sigs.k8s.io/cluster-api)/core/config/crd/bases
[ -d "$src" ] || { echo "Cluster API CRDs not found in $src" >&2; exit 1; }
rm -f config/crd/cluster-api/*.yaml
for f in "$src"/*.yaml; do
  install -m 0644 "$f" config/crd/cluster-api/
done
