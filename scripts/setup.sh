#!/usr/bin/env bash
# Installs what systemk and its tests need on a fresh Debian/Ubuntu machine (run as root):
# Debian packages, Node.js/npm (only to fetch Deno), Deno 2.9.6 from npm, the npm modules,
# and (with --controlplane) a real Kubernetes control plane and, for the k3s kit's test, an
# upstream Prometheus, both built from Go modules.
# Idempotent: a second run with warm caches takes seconds.
set -euo pipefail

DENO_VERSION=2.9.6
CACHE=${SYSTEMK_CACHE:-/var/cache/systemk-dev}
here=$(cd "$(dirname "$0")/.." && pwd)
want_controlplane=no
for arg in "$@"; do
  case "$arg" in
    --controlplane) want_controlplane=yes ;;
    *) echo "setup.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have systemd-analyze || need_pkgs+=(systemd)
[ -x /lib/systemd/systemd ] || need_pkgs+=(systemd)
have dbus-daemon || need_pkgs+=(dbus)
have journalctl || need_pkgs+=(systemd)
have unshare || need_pkgs+=(util-linux)
have ip || need_pkgs+=(iproute2)
have openssl || need_pkgs+=(openssl)
have dpkg-deb || need_pkgs+=(dpkg)
have curl || need_pkgs+=(curl ca-certificates)
have npm || need_pkgs+=(nodejs npm)
have shellcheck || need_pkgs+=(shellcheck)
# Tests' tiny HTTP servers (probes) are python3 -c scripts.
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

mkdir -p "$CACHE"
deno_bin="$CACHE/deno-$DENO_VERSION/node_modules/.bin/deno"
if ! [ -x "$deno_bin" ] || ! "$deno_bin" --version | grep -q "deno $DENO_VERSION"; then
  echo "setup: installing Deno $DENO_VERSION from npm"
  mkdir -p "$CACHE/deno-$DENO_VERSION"
  echo "{}" > "$CACHE/deno-$DENO_VERSION/package.json"
  npm install --silent --no-audit --no-fund --prefix "$CACHE/deno-$DENO_VERSION" "deno@$DENO_VERSION"
fi
ln -sf "$deno_bin" /usr/local/bin/deno
echo "setup: $(deno --version | head -1)"

(cd "$here" && deno install --frozen --quiet)

if [ "$want_controlplane" = yes ]; then
  bash "$here/scripts/build-controlplane.sh" >/dev/null
  echo "setup: control plane binaries in $(bash "$here/scripts/build-controlplane.sh" | tail -1)"
  echo "setup: prometheus at $(bash "$here/scripts/build-prometheus.sh" | tail -1)"
fi
