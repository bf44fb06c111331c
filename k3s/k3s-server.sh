#!/bin/sh
# k3s-server.sh: starts a k3s server suited to systemk nodes, in the foreground (as root).
#
# systemk is the node, so k3s runs only the control plane: no agent (no kubelet or containerd
# on the server), and none of the bundled add-ons, which all need container nodes: no CoreDNS
# (pods use the host's resolver), Traefik, ServiceLB, metrics-server, local-path storage, Helm
# controller, network policy controller, kube-proxy, flannel or cloud controller.
# --egress-selector-mode=disabled makes the API server reach each node's kubelet API (port
# 10250, `kubectl logs`) directly; k3s' default tunnels it through its own agents, which
# systemk nodes do not run.
#
#   sh k3s/k3s-server.sh [--dry-run] [more k3s server flags, e.g. --tls-san k3s.example]
#
# K3S names the k3s binary (default: k3s on PATH, else ~/tmp/k3s as in the original systemk).
# --dry-run prints the command instead of running it. Then, on the server:
#   export KUBECONFIG=/etc/rancher/k3s/k3s.yaml
#   sh k3s/join-token.sh          # a bootstrap token and the install.sh line for each machine
set -eu

k3s=${K3S:-}
if [ -z "$k3s" ]; then
  if command -v k3s >/dev/null 2>&1; then
    k3s=$(command -v k3s)
  else
    k3s=$HOME/tmp/k3s
  fi
fi

dry_run=no
if [ "${1-}" = --dry-run ]; then
  dry_run=yes
  shift
fi

set -- server \
  --disable-agent \
  --disable=coredns,servicelb,traefik,local-storage,metrics-server \
  --disable-helm-controller \
  --disable-network-policy \
  --disable-kube-proxy \
  --disable-cloud-controller \
  --flannel-backend=none \
  --egress-selector-mode=disabled \
  "$@"

if [ "$dry_run" = yes ]; then
  printf '%s' "$k3s"
  printf ' %s' "$@"
  printf '\n'
  exit 0
fi
[ -x "$k3s" ] || {
  echo "k3s-server.sh: no k3s binary at $k3s: download k3s from its releases and set K3S" >&2
  exit 1
}
exec "$k3s" "$@"
