#!/bin/sh
# join-token.sh: prepares a cluster for systemk nodes that join with a bootstrap token, using
# only kubectl (any cluster with bootstrap token authentication: k3s, kubeadm, ...), and prints
# the install.sh command line that joins a machine.
#
# It creates (kubectl apply, so re-running is safe; each run makes a new token):
# - a bootstrap token: Secret bootstrap-token-<id> in kube-system, in the extra group
#   system:bootstrappers:systemk, expiring after --ttl-hours (default 24; 0: never);
# - the ClusterRoleBindings kubeadm makes for TLS bootstrapping, bound to that group only:
#   its tokens may create CertificateSigningRequests (system:node-bootstrapper), and their
#   node client CSRs are approved automatically (...:nodeclient); nodes' renewal CSRs for
#   their own client certificates too (...:selfnodeclient, group system:nodes);
# - the cluster CA certificate as a file (--ca-out, default ./cluster-ca.crt), taken from the
#   kubeconfig kubectl uses;
# - the token as a file (--token-out, default bootstrap-token beside the CA file, mode 0600):
#   install.sh reads it with --token-file, so the token is on no command line (ps shows every
#   command line to every user) and in no shell history.
#
#   sh k3s/join-token.sh [--kubeconfig PATH] [--ttl-hours N] [--ca-out PATH] [--token-out PATH]
#                        [--print-token]
#
# --print-token prints only the token (for scripts). KUBECTL names the kubectl to use.
set -eu

kubectl=${KUBECTL:-kubectl}
kubeconfig=
ttl_hours=24
ca_out=./cluster-ca.crt
token_out=
print_token=no
group=system:bootstrappers:systemk

die() {
  printf 'join-token.sh: error: %s\n' "$*" >&2
  exit 1
}

while [ "$#" -gt 0 ]; do
  case $1 in
    --kubeconfig) [ "$#" -ge 2 ] || die "$1 needs a value"; kubeconfig=$2; shift ;;
    --ttl-hours) [ "$#" -ge 2 ] || die "$1 needs a value"; ttl_hours=$2; shift ;;
    --ca-out) [ "$#" -ge 2 ] || die "$1 needs a value"; ca_out=$2; shift ;;
    --token-out) [ "$#" -ge 2 ] || die "$1 needs a value"; token_out=$2; shift ;;
    --print-token) print_token=yes ;;
    -h | --help) sed -n '2,/^set -eu/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option \"$1\" (see --help)" ;;
  esac
  shift
done
case $ttl_hours in
  '' | *[!0-9]*) die "--ttl-hours needs a whole number of hours, not \"$ttl_hours\"" ;;
esac
[ -n "$token_out" ] || token_out=$(dirname "$ca_out")/bootstrap-token

k() {
  if [ -n "$kubeconfig" ]; then
    "$kubectl" --kubeconfig "$kubeconfig" "$@"
  else
    "$kubectl" "$@"
  fi
}

# [a-z0-9]{n}, the alphabet of bootstrap token ids and secrets, from the kernel's randomness.
random_token() {
  LC_ALL=C tr -dc 'a-z0-9' </dev/urandom | head -c "$1"
}

token_id=$(random_token 6)
token_secret=$(random_token 16)
expiration=
if [ "$ttl_hours" -gt 0 ]; then
  expiration=$(date -u -d "@$(($(date +%s) + ttl_hours * 3600))" +%Y-%m-%dT%H:%M:%SZ)
fi

# binding NAME CLUSTERROLE GROUP: a ClusterRoleBinding of one group to one ClusterRole.
binding() {
  printf -- '---\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\n'
  printf 'metadata:\n  name: %s\n' "$1"
  printf 'roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: %s\n' "$2"
  printf 'subjects:\n  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: %s\n' "$3"
}

{
  cat <<EOF
apiVersion: v1
kind: Secret
metadata:
  name: bootstrap-token-$token_id
  namespace: kube-system
type: bootstrap.kubernetes.io/token
stringData:
  description: "systemk node join token (k3s/join-token.sh)"
  token-id: "$token_id"
  token-secret: "$token_secret"
  usage-bootstrap-authentication: "true"
  usage-bootstrap-signing: "true"
  auth-extra-groups: "$group"
EOF
  [ -z "$expiration" ] || printf '  expiration: "%s"\n' "$expiration"
  binding systemk:node-bootstrapper system:node-bootstrapper "$group"
  binding systemk:node-autoapprove-bootstrap \
    system:certificates.k8s.io:certificatesigningrequests:nodeclient "$group"
  binding systemk:node-autoapprove-certificate-rotation \
    system:certificates.k8s.io:certificatesigningrequests:selfnodeclient system:nodes
} | k apply -f - >&2

cluster() { k config view --minify --raw -o "jsonpath={.clusters[0].cluster.$1}"; }
server=$(cluster server)
ca_data=$(cluster certificate-authority-data)
if [ -n "$ca_data" ]; then
  printf '%s' "$ca_data" | base64 -d >"$ca_out"
else
  ca_file=$(cluster certificate-authority)
  [ -n "$ca_file" ] || die "the kubeconfig names no cluster CA; copy it to $ca_out by hand"
  cp "$ca_file" "$ca_out"
fi

if [ "$print_token" = yes ]; then
  echo "$token_id.$token_secret"
  exit 0
fi
# Only the owner may read the token file, from its first byte on.
(umask 077 && printf '%s.%s\n' "$token_id" "$token_secret" >"$token_out.tmp")
mv -f "$token_out.tmp" "$token_out"
cat <<EOF
Bootstrap token $token_id (expires: ${expiration:-never}); its secret is in $token_out.
Copy $ca_out and $token_out to the machine that should join (as root, mode 0600), then
run there as root, with the release's SHA-256 for the machine's architecture:

  sh install.sh --url <release>/systemk-linux-{arch} --sha256 <SHA-256 of that file> \\
    --server $server --ca-file cluster-ca.crt --token-file bootstrap-token \\
    --extra-flags --rotate-server-certificates

If $server is not how that machine reaches the API server (k3s writes 127.0.0.1 into
its own kubeconfig), give the address it reaches; the server's certificate must name it.
Then approve the node's kubelet API certificate (kubectl logs needs it):
  kubectl certificate approve \$(kubectl get csr -o name \\
    --field-selector spec.signerName=kubernetes.io/kubelet-serving)
EOF
