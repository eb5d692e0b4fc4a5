#!/usr/bin/env bash
# Builds the hcp release payloads: one binary per component, from the pinned
# upstream modules under release/, into bin/release/<version>/ with a
# release.json describing it, one directory per release (see releases below).
#   control plane: release/kube (etcd, etcdutl, kube-apiserver, kube-controller-manager,
#                  kube-scheduler, kubectl; older releases build the same
#                  mains with the pins of release/kube-<minor>/go.mod) and
#                  release/konnectivity
#   nodes:         release/kube (kubelet, kube-proxy), release/containerd
#                  (containerd, its runc shim, ctr), release/runc (with seccomp:
#                  needs Debian's libseccomp-dev and pkg-config), release/cni
#                  (bridge, host-local, loopback, portmap), release/crictl,
#                  release/coredns, release/pause (the pods' sandbox process)
#   management nodes: release/localpath (rancher's local-path-provisioner)
#   test images:   release/testimages (agnhost, sample-apiserver, nnp, the
#                  update-demo pictures), release/busybox (busybox from its
#                  upstream source), and Debian's dig, getent, curl, bash and
#                  nc with their libraries
# Each module is rebuilt only when its pins (go.mod, go.sum, mains) or this
# script change; a cold build of everything takes about half an hour on two
# cores, each further release about ten minutes.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
build_date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
# The releases, newest (the default) first: version, the module whose go.mod
# pins its Kubernetes and etcd (release/kube's mains are built with it; to
# tidy one: cd release/kube && go mod tidy -modfile=../kube-1.36/go.mod),
# etcd's version (the one that Kubernetes release pins). Every release shares the default's node runtime, CoreDNS,
# konnectivity (both pin v0.34.0) and test programs: they are built once and
# linked into the others.
releases=(
  "1.37.2 kube v3.7.0"
  "1.36.3 kube-1.36 v3.6.8"
)
if [ -n "${RELEASES:-}" ]; then # RELEASES="1.37.2": build only those
  keep=()
  for v in $RELEASES; do
    found=""
    for r in "${releases[@]}"; do [ "${r%% *}" = "$v" ] && found=$r; done
    if [ -z "$found" ]; then
      echo "RELEASES: $v is not a release this script builds (it builds: $(printf '%s ' "${releases[@]%% *}"))" >&2
      exit 2
    fi
    keep+=("$found")
  done
  releases=("${keep[@]}")
fi
default_version=1.37.2
root="${OUT:-$top/bin/release}"
out="$root/$default_version"
mkdir -p "$out"

# pins_of <module dir>: a hash of the module's pins and sources.
pins_of() {
  (cd "$top/release" && find "$1" -type f \( -name go.mod -o -name go.sum -o -name '*.go' -o -name build.sh \) |
    LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
}

# build <module dir> <binaries...> -- <command...>: runs the command in the
# module unless its binaries were built from its current pins with the same
# command (the build date aside).
build() {
  local dir=$1; shift
  local bins=()
  while [ "$1" != "--" ]; do bins+=("$1"); shift; done
  shift
  local stamp="$out/.pins-$dir" pins cmd="$*"
  # The command as it would be anywhere: without the build date and the
  # checkout's own path.
  cmd=${cmd//$build_date/}
  pins=$( (pins_of "$dir"; echo "${cmd//$top/}") | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pins" ]; then
    local missing=0
    for b in "${bins[@]}"; do [ -x "$out/$b" ] || missing=1; done
    [ $missing = 0 ] && return 0
  fi
  echo "building ${bins[*]} (release/$dir)"
  (cd "$top/release/$dir" && "$@")
  for b in "${bins[@]}"; do [ -x "$out/$b" ] || { echo "release/$dir did not produce $b" >&2; exit 1; }; done
  echo "$pins" > "$stamp"
}

export CGO_ENABLED=0
gobuild() { go build -trimpath "$@"; }

# kube_release <version> <module dir> <out>: a release's Kubernetes programs
# and etcd, from release/kube's mains with the module's pins, with
# Kubernetes' version in their version ldflags.
kube_release() {
  local version=$1 dir=$2 out=$3 kv="v$1" minor ldflags="" commit
  minor=$(echo "$version" | cut -d. -f2)
  commit=$( (pins_of "$dir"; pins_of kube/cmd) | sha256sum | cut -c1-16)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$kv -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=$commit -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
  done
  build "$dir" etcd etcdutl kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy -- \
    go build -C ../kube -trimpath -modfile="../$dir/go.mod" -ldflags "-s -w $ldflags" -o "$out/" \
    ./cmd/kube-apiserver ./cmd/kube-controller-manager ./cmd/kube-scheduler ./cmd/etcd ./cmd/kubectl ./cmd/kubelet ./cmd/kube-proxy \
    go.etcd.io/etcd/etcdutl/v3
}
kube_release "$default_version" kube "$out"
build konnectivity konnectivity-server konnectivity-agent -- \
  gobuild -ldflags "-s -w" -o "$out/" ./cmd/konnectivity-server ./cmd/konnectivity-agent

containerd_version=v2.4.2
build containerd containerd containerd-shim-runc-v2 ctr -- \
  gobuild -tags "no_btrfs no_devmapper no_zfs" \
  -ldflags "-s -w -X github.com/containerd/containerd/v2/version.Version=$containerd_version -X github.com/containerd/containerd/v2/version.Revision=hcp" \
  -o "$out/" github.com/containerd/containerd/v2/cmd/containerd github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 github.com/containerd/containerd/v2/cmd/ctr
runc_version=v1.5.3
# runc filters system calls with libseccomp, linked statically so the binary
# runs on hosts without it.
build runc runc -- env CGO_ENABLED=1 go build -trimpath -tags "seccomp netgo osusergo" \
  -ldflags "-s -w -extldflags -static -X main.version=${runc_version#v}" -o "$out/runc" github.com/opencontainers/runc
cni_version=v1.10.0
mkdir -p "$out/cni"
build cni cni/bridge cni/host-local cni/loopback cni/portmap -- \
  gobuild -ldflags "-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$cni_version" -o "$out/cni/" \
  github.com/containernetworking/plugins/plugins/main/bridge github.com/containernetworking/plugins/plugins/ipam/host-local \
  github.com/containernetworking/plugins/plugins/main/loopback github.com/containernetworking/plugins/plugins/meta/portmap
crictl_version=v1.37.0
build crictl crictl -- \
  gobuild -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$crictl_version" -o "$out/crictl" sigs.k8s.io/cri-tools/cmd/crictl
coredns_version=v1.15.0
build coredns coredns -- gobuild -ldflags "-s -w" -o "$out/coredns" github.com/coredns/coredns
# Management nodes' volumes.
localpath_version=v0.0.30
build localpath local-path-provisioner -- \
  gobuild -ldflags "-s -w -X main.VERSION=$localpath_version" -o "$out/local-path-provisioner" github.com/rancher/local-path-provisioner
# The pods' sandbox process, hcp's own.
build pause pause -- gobuild -ldflags "-s -w" -o "$out/pause" .

# Test images' programs (the end-to-end and conformance tests run them in
# pods): agnhost, sample-apiserver and nnp from the Kubernetes tree, busybox,
# Debian's dig, getent, curl, bash and nc.
kube_dir=$(cd "$top/release/testimages" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
agnhost_version=$(cat "$kube_dir/test/images/agnhost/VERSION")
build testimages agnhost sample-apiserver nnp -- sh -c "
  go build -trimpath -ldflags '-s -w -X main.Version=$agnhost_version' -o '$out/agnhost' k8s.io/kubernetes/test/images/agnhost &&
  go build -trimpath -ldflags '-s -w' -o '$out/sample-apiserver' k8s.io/sample-apiserver &&
  go build -trimpath -ldflags '-s -w' -o '$out/nnp' k8s.io/kubernetes/test/images/nonewprivs"
sample_apiserver_version=$(cd "$top/release/testimages" && go list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' k8s.io/sample-apiserver)
# Files the test images hold beside their programs: the update-demo images'
# pictures and data (kubectl's conformance specs) and agnhost's certificate
# (its file server's readiness checks fetch it).
testdata() { # testdata <image> <source file>
  mkdir -p "$out/testdata/$1"
  cmp -s "$2" "$out/testdata/$1/$(basename "$2")" || install -m 0644 "$2" "$out/testdata/$1/"
}
for demo in kitten nautilus; do
  testdata "$demo" "$kube_dir/test/images/$demo/html/$demo.jpg"
  testdata "$demo" "$kube_dir/test/images/$demo/html/data.json"
done
testdata agnhost "$kube_dir/test/images/agnhost/porter/localhost.crt"
testdata agnhost "$kube_dir/test/images/agnhost/porter/localhost.key"
# busybox from its upstream source (release/busybox/build.sh).
build busybox busybox -- bash ./build.sh "$out"
busybox_version=$("$out/busybox" --help 2>&1 | sed -nE '1s/^BusyBox v([0-9.]+).*/\1/p')
# Debian's dig, getent, curl, bash and netcat (OpenBSD's, as upstream's
# agnhost has it), with the libraries and loader they need, as a tree to put
# at the root of test images (the suite probes DNS with dig and getent, and
# Services with curl and nc).
tools="$out/tools"
rm -rf "$tools.new"
progs=()
for p in dig getent curl bash nc.openbsd; do
  src=$(command -v "$p" || true)
  if [ -z "$src" ]; then
    echo "no $p: install Debian's bind9-dnsutils, curl and netcat-openbsd (apt-get install bind9-dnsutils curl netcat-openbsd)" >&2
    exit 1
  fi
  progs+=("$(readlink -f "$src")")
  case $p in bash) t="$tools.new/bin/bash" ;; nc.openbsd) t="$tools.new/usr/bin/nc" ;; *) t="$tools.new/usr/bin/$p" ;; esac
  mkdir -p "$(dirname "$t")" && cp -L "$src" "$t"
done
for f in $(ldd "${progs[@]}" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// && $1 !~ /:$/ {print $1}' | sort -u); do
  mkdir -p "$tools.new$(dirname "$f")" && cp -L "$f" "$tools.new$f"
done
if diff -qr "$tools.new" "$tools" >/dev/null 2>&1; then rm -rf "$tools.new"; else rm -rf "$tools" && mv "$tools.new" "$tools"; fi
dig_version=$(dig -v 2>&1 | sed -nE 's/^DiG ([0-9.]+).*/\1/p')

shared_pins=$(for d in konnectivity containerd runc cni crictl coredns pause testimages busybox localpath; do pins_of "$d"; done)
# Files every release shares with the default one.
shared=(konnectivity-server konnectivity-agent containerd containerd-shim-runc-v2 ctr runc cni crictl coredns
  local-path-provisioner pause agnhost sample-apiserver nnp busybox testdata tools)

for r in "${releases[@]}"; do
  read -r version dir etcd_version <<<"$r"
  rout="$root/$version"
  mkdir -p "$rout"
  if [ "$version" != "$default_version" ]; then
    kube_release "$version" "$dir" "$rout"
    for f in "${shared[@]}"; do
      rm -rf "${rout:?}/$f" && cp -al "$out/$f" "$rout/$f"
    done
  fi
  kv="v$version"
  pins=$( (pins_of "$dir"; echo "$shared_pins") | sha256sum | cut -c1-16)
  cat > "$rout/release.json.new" <<JSON
{
  "name": "$version",
  "image": "hcp.dev/release:$version",
  "pins": "$pins",
  "components": {
    "kubernetes": "$kv",
    "kube-apiserver": "$kv",
    "kube-controller-manager": "$kv",
    "kube-scheduler": "$kv",
    "kubectl": "$kv",
    "etcd": "$etcd_version",
    "konnectivity-server": "v0.34.0",
    "konnectivity-agent": "v0.34.0",
    "kubelet": "$kv",
    "kube-proxy": "$kv",
    "containerd": "$containerd_version",
    "runc": "$runc_version",
    "cni-plugins": "$cni_version",
    "crictl": "$crictl_version",
    "coredns": "$coredns_version",
    "local-path-provisioner": "$localpath_version",
    "pause": "$version",
    "agnhost": "$agnhost_version",
    "busybox": "$busybox_version",
    "sample-apiserver": "$sample_apiserver_version",
    "dig": "$dig_version"
  }
}
JSON
  # Keep the image digests hcp release write-digests recorded while the
  # pins are unchanged.
  if [ -f "$rout/release.json" ] && grep -q "\"pins\": \"$pins\"" "$rout/release.json"; then
    rm "$rout/release.json.new"
  else
    mv "$rout/release.json.new" "$rout/release.json"
  fi
  echo "release $version is current in $rout"
done
