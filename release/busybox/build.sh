#!/usr/bin/env bash
# Builds busybox from its upstream release tarball (as Debian's archive keeps
# it, checked against a pinned digest) with busybox's default configuration,
# linked statically: the shell and tools of the test images, as the busybox
# images of Docker Hub have them. Debian's own busybox is not used: its shell
# drops environment variables whose names are not shell names, which the
# conformance specs of envFrom prefixes expect to see.
#   build.sh <output dir>
set -euo pipefail
version=1.37.0
sha256=3311dff32e746499f4df0d5df04d7eb396382d7e108bb9250e7b519b837043a4
url=${BUSYBOX_URL:-http://deb.debian.org/debian/pool/main/b/busybox/busybox_${version}.orig.tar.bz2}
out=$1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
curl -fsSL --retry 3 -o "$work/src.tar.bz2" "$url" || {
  echo "cannot download busybox $version from $url: set BUSYBOX_URL to a copy of busybox-$version.tar.bz2" >&2
  exit 1
}
echo "$sha256  $work/src.tar.bz2" | sha256sum -c --quiet - || {
  echo "$url is not busybox $version (sha256 differs)" >&2
  exit 1
}
tar -C "$work" -xjf "$work/src.tar.bz2"
cd "$work/busybox-$version"
make -s defconfig >/dev/null
# Static, and without tc: it needs the CBQ scheduler's headers, which Linux
# 6.8 removed.
sed -i 's/^# CONFIG_STATIC is not set/CONFIG_STATIC=y/; s/^CONFIG_TC=y/# CONFIG_TC is not set/' .config
make -s -j"$(nproc)" busybox >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
install -m 0755 busybox "$out/busybox"
