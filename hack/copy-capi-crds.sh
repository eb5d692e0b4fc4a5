#!/usr/bin/env bash
# Copies the Cluster API CRDs whose controllers the hcp operator runs (Cluster,
# Machine, MachineSet, MachineDeployment, MachineHealthCheck, and MachinePool
# and MachineDrainRule, which those controllers read) into
# config/crd/cluster-api from the sigs.k8s.io/cluster-api module of the same
# release as the sigs.k8s.io/cluster-api/api module pinned in go.mod, so the
# installed CRDs always match the types the code uses. ClusterClass,
# ClusterResourceSet, IPAM and runtime-extension CRDs are left out: no
# controller here would act on their objects.
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(go list -m -f '{{.Version}}' sigs.k8s.io/cluster-api/api)
dir=$(go mod download -json "sigs.k8s.io/cluster-api@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
src=$dir/core/config/crd/bases
[ -d "$src" ] || { echo "Cluster API $version CRDs not found in $src" >&2; exit 1; }
rm -f config/crd/cluster-api/*.yaml
for kind in clusters machines machinesets machinedeployments machinehealthchecks machinepools machinedrainrules; do
  install -m 0644 "$src/cluster.x-k8s.io_$kind.yaml" config/crd/cluster-api/
done
echo "copied $(ls config/crd/cluster-api | wc -l) Cluster API $version CRDs"
