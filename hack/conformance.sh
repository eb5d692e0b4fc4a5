#!/usr/bin/env bash
# make conformance: builds Kubernetes' end-to-end suite (e2e.test) at the
# release's version, starts hcp up with the example cluster on two real lab
# nodes, runs the [Conformance] specs against it with images from hcp's
# registry, and writes docs/conformance.md.
#   FOCUS, SKIP: ginkgo regular expressions (default: every conformance spec)
#   PROCS: how many specs run at once (default 4; [Serial] specs run alone)
#   KEEP=1 keeps the data directory and the report
set -euo pipefail
procs=${PROCS:-4}
case $procs in
  '' | *[!0-9]* | 0) echo "PROCS=$procs: must be a whole number of specs to run at once, 1 or more" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
bin="$top/bin"
out="$bin/conformance"
mkdir -p "$out"
stamp="$out/.pins"
# The suite knows its own version (Pod Security fixtures are chosen by it),
# as the release's components do.
kv=$(sed -nE 's/^ *"kubernetes": "(v[0-9.]+)".*/\1/p' "$bin"/release/*/release.json | head -1)
minor=$(echo "$kv" | cut -d. -f2)
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$kv -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
pins=$( (cd "$top/release/conformance" && cat go.mod go.sum tools.go; echo "$ldflags") | sha256sum | cut -c1-16)
if [ ! -x "$out/e2e.test" ] || [ ! -x "$out/ginkgo" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$pins" ]; then
  echo "building e2e.test $kv (release/conformance)"
  (cd "$top/release/conformance" && CGO_ENABLED=0 go test -c -trimpath -ldflags "$ldflags" -o "$out/e2e.test.new" k8s.io/kubernetes/test/e2e)
  mv "$out/e2e.test.new" "$out/e2e.test"
  (cd "$top/release/conformance" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/ginkgo" github.com/onsi/ginkgo/v2/ginkgo)
  echo "$pins" > "$stamp"
fi
data=$(mktemp -d /tmp/hcp-conformance-XXXX)
cleanup() {
  if [ -n "${up:-}" ]; then kill -INT "$up" 2>/dev/null || true; wait "$up" 2>/dev/null || true; fi
  [ -n "${KEEP:-}" ] || rm -rf "$data"
}
trap cleanup EXIT
"$bin/hcp" up --data-dir "$data" --example --agents 2 --console-port -1 > "$data/up.out" 2>&1 &
up=$!
for _ in $(seq 600); do
  grep -q "NodePool clusters/example is Ready" "$data/up.out" && break
  kill -0 "$up" 2>/dev/null || { cat "$data/up.out"; exit 1; }
  sleep 1
done
grep -q "NodePool clusters/example is Ready" "$data/up.out" || { tail -20 "$data/up.out"; echo "the example cluster's nodes were not Ready in 10 minutes" >&2; exit 1; }
KUBECONFIG="$data/kubeconfig" "$bin/hcp" create kubeconfig --namespace clusters --name example > "$data/kubeconfig-example"
# The suite's images come from hcp's registry: its e2e-test-images, library
# and pause repositories.
cat > "$data/repos.yaml" <<YAML
promoterE2eRegistry: registry.hcp.test/e2e-test-images
gcRegistry: registry.hcp.test
gcEtcdRegistry: registry.hcp.test
dockerLibraryRegistry: registry.hcp.test/library
invalidRegistry: invalid.registry.hcp.test/invalid
YAML
commit=$(git -C "$top" rev-parse --short HEAD)
started=$(date -u +'%Y-%m-%d %H:%M')
set +e
KUBE_TEST_REPO_LIST="$data/repos.yaml" "$out/ginkgo" --procs "$procs" --no-color --timeout 6h \
  --focus "${FOCUS:-\[Conformance\]}" --skip "${SKIP:-\[Disruptive\]}" "$out/e2e.test" -- \
  --kubeconfig "$data/kubeconfig-example" --provider skeleton --report-dir "$data/report" --disable-log-dump > "$data/e2e.log" 2>&1
rc=$?
set -e
tail -5 "$data/e2e.log"
report=$(ls "$data"/report/junit*.xml | head -1)
(cd "$top" && go run ./test/conformance -junit "$report" -known test/conformance/known.txt -out docs/conformance.md \
  -about "Run of commit $commit on $(nproc) CPUs, $started–$(date -u +%H:%M) UTC: hcp up --example --agents 2 (SingleReplica control plane, two real lab nodes), e2e.test $(cat "$top/bin/release/"*/release.json | grep -m1 '"kubernetes"' | cut -d'"' -f4), $procs specs at once, focus \`${FOCUS:-\[Conformance\]}\`, skip \`${SKIP:-\[Disruptive\]}\`; e2e.test exited $rc.")
