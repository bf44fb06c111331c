#!/usr/bin/env bash
# Builds an upstream Prometheus (with Kubernetes service discovery, which Debian's package lacks)
# from Go modules into a cache directory, and prints the binary's path as the last line of its
# output. Test-only: the k3s kit's test runs it as a systemk pod (tests/e2e/kit_test.ts).
#
# The Go module proxy serves github.com/prometheus/prometheus; v0.316.0 is Prometheus 3.x and
# builds with the machines' Go without replaces (about 5 minutes cold, 147 MB; no web UI
# assets, the HTTP API works). The binary is cached by version, so a warm run takes no time.
#
# Environment:
#   SYSTEMK_CACHE   cache root (default /var/cache/systemk-dev)
#   GO              go binary (default /usr/local/go/bin/go if present, else `go` on PATH)
set -euo pipefail

VERSION=v0.316.0

fail() {
  echo "build-prometheus: $*" >&2
  exit 1
}

dir="${SYSTEMK_CACHE:-/var/cache/systemk-dev}/prometheus/$VERSION"
binary="$dir/prometheus"
if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

mkdir -p "$dir"
# Parallel tests (and setup.sh) may ask at once: the first builds, the others wait on the lock
# and then find the binary.
exec 9>"$dir/.lock"
flock 9
if [[ -x "$binary" ]]; then
  echo "$binary"
  exit 0
fi

if [[ -z "${GO:-}" ]]; then
  if [[ -x /usr/local/go/bin/go ]]; then GO=/usr/local/go/bin/go; else GO=go; fi
fi
command -v "$GO" >/dev/null || fail "go not found (set GO=)"

# Installed into a staging directory and renamed into place, so an interrupted build never
# leaves a binary that looks complete.
staging="$(mktemp -d "$dir/bin.partial.XXXXXX")"
trap 'rm -rf "$staging"' EXIT
echo "build-prometheus: building Prometheus $VERSION (cold builds take about 5 minutes)" >&2
start=$SECONDS
GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$staging" "$GO" install -trimpath \
  "github.com/prometheus/prometheus/cmd/prometheus@$VERSION" >&2 || fail "go install failed"
[[ -x "$staging/prometheus" ]] || fail "go install did not produce prometheus"
mv "$staging/prometheus" "$binary"
echo "build-prometheus: built $VERSION in $((SECONDS - start)) s" >&2
echo "$binary"
