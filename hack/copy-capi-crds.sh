#!/usr/bin/env bash
# Copies Cluster API's core CRDs into config/crd/cluster-api from the
# sigs.k8s.io/cluster-api module of the same release as the
# sigs.k8s.io/cluster-api/api module pinned in go.mod, so the installed CRDs always
# match the types the code uses.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(go list -m -f '{{.Version}}' sigs.k8s.io/cluster-api/api)
dir=$(go mod download -json "sigs.k8s.io/cluster-api@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
src=$dir/core/config/crd/bases
[ -d "$src" ] || { echo "Cluster API $version CRDs not found in $src" >&2; exit 1; }
rm -f config/crd/cluster-api/*.yaml
for f in "$src"/*.yaml; do
  install -m 0644 "$f" config/crd/cluster-api/
done
echo "copied $(ls config/crd/cluster-api | wc -l) Cluster API $version CRDs"
