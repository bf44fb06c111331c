#!/usr/bin/env bash
# Builds a real Kubernetes control plane (kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, etcd) from the Go module in tests/controlplane/ into a cache directory, and prints that
# directory as the last line of its output.
#
# No control plane is packaged for npm or Debian on the development machines, but the Go module
# proxy serves k8s.io/kubernetes, so the tests build one. A cold build takes minutes, so the
# binaries are cached under a key made of the Kubernetes version and the hash of go.sum: a
# different pin gets a different directory, and an unchanged pin is never rebuilt.
#
# Environment:
#   SYSTEMK_CACHE   cache root (default /var/cache/systemk-dev)
#   GO              go binary (default /usr/local/go/bin/go if present, else `go` on PATH)
set -euo pipefail

fail() {
  echo "build-controlplane: $*" >&2
  exit 1
}

module_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../tests/controlplane" && pwd)"
[[ -f "$module_dir/go.mod" && -f "$module_dir/go.sum" ]] || fail "no go.mod/go.sum in $module_dir"

# The version comes from the pin itself, so the ldflags stamp and the cache key cannot drift
# from what is actually built.
version="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ { print $2; exit }' "$module_dir/go.mod")"
[[ "$version" =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || fail "cannot read the k8s.io/kubernetes version from go.mod"
minor="${BASH_REMATCH[1]}"
sum_hash="$(sha256sum "$module_dir/go.sum" | cut -c1-16)"
key="${version}-${sum_hash}"

cache_root="${SYSTEMK_CACHE:-/var/cache/systemk-dev}/controlplane"
key_dir="$cache_root/$key"
bin_dir="$key_dir/bin"
binaries=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd)

cache_complete() {
  local b
  for b in "${binaries[@]}"; do
    [[ -x "$bin_dir/$b" ]] || return 1
  done
}

if cache_complete; then
  echo "build-controlplane: cached $version at $bin_dir" >&2
  echo "$bin_dir"
  exit 0
fi

mkdir -p "$key_dir"
# Several test processes may ask for the same build at once; the first builds, the others wait
# on the lock and then find the cache complete.
exec 9>"$key_dir/.lock"
flock 9
if cache_complete; then
  echo "build-controlplane: cached $version at $bin_dir (built by another process)" >&2
  echo "$bin_dir"
  exit 0
fi

if [[ -z "${GO:-}" ]]; then
  if [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; else GO=go; fi
fi
command -v "$GO" >/dev/null || fail "go not found (set GO=)"

# Without these stamps the binaries report v0.0.0-master+$Format:%H$, which kubectl cannot parse.
ldflags="-X k8s.io/component-base/version.gitVersion=$version"
ldflags+=" -X k8s.io/component-base/version.gitMajor=1"
ldflags+=" -X k8s.io/component-base/version.gitMinor=$minor"
ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$version"
ldflags+=" -X k8s.io/client-go/pkg/version.gitMajor=1"
ldflags+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"

# Build into a fresh directory and rename it into place only when every binary is there, so an
# interrupted build never leaves a cache that looks complete.
staging="$(mktemp -d "$key_dir/bin.partial.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
chmod 755 "$staging"

echo "build-controlplane: building $version into $bin_dir (cold builds take several minutes)" >&2
start=$SECONDS
(
  cd "$module_dir"
  # GOTOOLCHAIN=local: never try to download another toolchain; -mod=readonly: build exactly
  # what go.sum records.
  GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=readonly "$GO" build -trimpath \
    -ldflags "$ldflags" -o "$staging/" \
    k8s.io/kubernetes/cmd/kube-apiserver \
    k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler \
    k8s.io/kubernetes/cmd/kubectl \
    ./etcd
) >&2 || fail "go build failed"

for b in "${binaries[@]}"; do
  [[ -x "$staging/$b" ]] || fail "go build did not produce $b"
done
rm -rf "$bin_dir"
mv "$staging" "$bin_dir"
trap - EXIT
echo "build-controlplane: built $version in $((SECONDS - start)) s" >&2
echo "$bin_dir"
