#!/usr/bin/env bash
# Builds the hcp release payload: one binary per control plane component, from the
# pinned upstream modules in release/kube and release/konnectivity, into
# bin/release/<version>/ with a release.json describing it. A build is reused while
# the pins (go.mod, go.sum, mains, this script) are unchanged.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
version=1.37.2
image="hcp.dev/release:${version}"
out="${OUT:-$top/bin/release/$version}"

pins=$(cd "$top/release" && find . -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name build.sh \) | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
if [ -f "$out/release.json" ] && grep -q "\"pins\": \"$pins\"" "$out/release.json"; then
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kubectl konnectivity-server konnectivity-agent; do
    [ -x "$out/$b" ] || { rm -f "$out/release.json"; break; }
  done
  [ -f "$out/release.json" ] && { echo "release $version is current in $out"; exit 0; }
fi

mkdir -p "$out"
export CGO_ENABLED=0
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
kv="v$version"
kube_ldflags=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  kube_ldflags+=" -X $pkg.gitVersion=$kv -X $pkg.gitMajor=1 -X $pkg.gitMinor=37"
  kube_ldflags+=" -X $pkg.gitCommit=$pins -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
done

echo "building release $version into $out (a cold build takes several minutes)"
(cd "$top/release/kube" && go build -trimpath -ldflags "-s -w $kube_ldflags" -o "$out/" \
  ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/etcd ./cmd/kubectl)
(cd "$top/release/konnectivity" && go build -trimpath -ldflags "-s -w" -o "$out/" \
  ./cmd/konnectivity-server ./cmd/konnectivity-agent)

cat > "$out/release.json" <<JSON
{
  "name": "$version",
  "image": "$image",
  "pins": "$pins",
  "components": {
    "kubernetes": "$kv",
    "kube-apiserver": "$kv",
    "kube-controller-manager": "$kv",
    "kube-scheduler": "$kv",
    "kubectl": "$kv",
    "etcd": "v3.7.0",
    "konnectivity-server": "v0.34.0",
    "konnectivity-agent": "v0.34.0"
  }
}
JSON
echo "release $version built in $out"
