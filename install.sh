#!/bin/sh
# install.sh: makes this Debian/Ubuntu machine a systemk node of a Kubernetes cluster.
#
#   curl -fsSL <release>/install.sh | sudo sh -s -- --url <release>/systemk-linux-{arch} \
#     --sha256 <the release's SHA-256 for the arch> \
#     --server https://k3s.example:6443 --ca-file cluster-ca.crt --token-file bootstrap-token
#
# It installs systemk (a release binary, a local file, or a launcher for a source checkout),
# writes /etc/systemd/system/systemk.service and its settings in /etc/systemk/systemk.env, and
# enables and starts the service. Re-running upgrades: it replaces systemk, rewrites the files
# (settings not given again are kept) and restarts the service; pods keep running, because each
# is its own set of units. `--uninstall` removes exactly what earlier runs created (listed in
# /usr/local/lib/systemk/installed-paths); packages that pods installed stay. `--help` for all
# options. POSIX sh, shellcheck clean.
set -eu

# Where things go; fixed, so that a re-run and --uninstall find them.
BIN=/usr/local/bin/systemk
LIB=/usr/local/lib/systemk
MANIFEST=$LIB/installed-paths
ETC=/etc/systemk
ENV_FILE=$ETC/systemk.env
UNIT=systemk.service
UNIT_FILE=/etc/systemd/system/$UNIT
STATE_DIR=/var/lib/systemk
CACHE_DIR=/var/cache/systemk
NODE_KUBECONFIG=$ETC/kubeconfig
BOOTSTRAP_KUBECONFIG=$ETC/bootstrap-kubeconfig
# Written by systemk itself after the bootstrap token got it a client certificate.
ISSUED_KUBECONFIG=$STATE_DIR/kubeconfig
CERT_DIR=$STATE_DIR/pki
# Written by systemk itself to raise logind's InhibitDelayMaxSec (graceful node shutdown).
LOGIND_DROP_IN=/etc/systemd/logind.conf.d/99-systemk.conf

usage() {
  cat <<'EOF'
usage: install.sh [options]           install or upgrade systemk as systemd service systemk.service
       install.sh --uninstall         remove what install.sh installed

Where systemk comes from (one; a re-run without one reuses the previous source):
  --url URL            release binary; "{arch}" in URL becomes amd64 or arm64   $SYSTEMK_URL
  --sha256 HEX         its expected SHA-256, from the release notes: give it.   $SYSTEMK_SHA256
                       Without it the checksum is fetched from URL.sha256, from the
                       same server as the binary: that catches a broken download,
                       not a server or connection that serves something else.
  --binary PATH        a systemk binary on this machine (checked with --sha256 if given)
                                                                                $SYSTEMK_BINARY
  --from-source DIR    a source checkout: installs Deno from npm if missing and a launcher
                       running DIR/main.ts with systemk's permission set         $SYSTEMK_SOURCE

How the node joins (kept from the previous run when not given):
  --kubeconfig PATH    a kubeconfig of the node identity (copied to /etc/systemk) $SYSTEMK_KUBECONFIG
  --server URL         API server URL, with a token                             $SYSTEMK_SERVER
  --ca-file PATH       the cluster CA certificate, with a token                 $SYSTEMK_CA_FILE
  --token-file PATH    a file holding a bootstrap token (ID.SECRET): systemk gets its
                       client certificate itself                                $SYSTEMK_TOKEN_FILE
  --token ID.SECRET    the token itself; on a command line every user of the machine
                       sees it in ps: prefer --token-file or $SYSTEMK_TOKEN      $SYSTEMK_TOKEN
  --node-name NAME     node name (default: the hostname)                        $SYSTEMK_NODE_NAME
  --node-ip IP         InternalIP (default: systemk's choice)                   $SYSTEMK_NODE_IP
  --node-external-ip IP  ExternalIP, also the pods' IP                          $SYSTEMK_NODE_EXTERNAL_IP
  --disable-taint      no virtual-kubelet.io/provider=systemk:NoSchedule taint  $SYSTEMK_DISABLE_TAINT=1
  --taint              taint the node again (undoes --disable-taint)
  --node-labels K=V,...  labels of the Node, e.g. tier=edge                     $SYSTEMK_NODE_LABELS
  --register-with-taints K=V:EFFECT,...                                         $SYSTEMK_REGISTER_WITH_TAINTS
                       taints the Node registers with, e.g. dedicated=edge:NoSchedule
  --extra-flags "..."  more systemk flags, e.g. "--max-pods 50"                 $SYSTEMK_EXTRA_FLAGS
  An empty value (--node-ip "") removes a setting.

Other:
  --no-start           enable the service but do not (re)start it (e.g. for machine images)
  --uninstall          stop and disable the service, remove what install.sh installed
  -h, --help           this text
EOF
}

say() { printf 'install.sh: %s\n' "$*"; }
warn() { printf 'install.sh: warning: %s\n' "$*" >&2; }
die() {
  printf 'install.sh: error: %s\n' "$*" >&2
  exit 1
}

# --- command line -------------------------------------------------------------------------

# Every option may also come from the environment; a flag wins. "*_set" tells "not given"
# (keep the previous setting) from "given empty" (remove it).
url=${SYSTEMK_URL-}
sha256=${SYSTEMK_SHA256-}
binary=${SYSTEMK_BINARY-}
source_dir=${SYSTEMK_SOURCE-}
kubeconfig=${SYSTEMK_KUBECONFIG-}
server=${SYSTEMK_SERVER-}
ca_file=${SYSTEMK_CA_FILE-}
token=${SYSTEMK_TOKEN-}
token_file=${SYSTEMK_TOKEN_FILE-}
# Where the token came from, for messages (never the token itself).
token_source=SYSTEMK_TOKEN
node_name=${SYSTEMK_NODE_NAME-}
node_name_set=${SYSTEMK_NODE_NAME+yes}
node_ip=${SYSTEMK_NODE_IP-}
node_ip_set=${SYSTEMK_NODE_IP+yes}
node_external_ip=${SYSTEMK_NODE_EXTERNAL_IP-}
node_external_ip_set=${SYSTEMK_NODE_EXTERNAL_IP+yes}
node_labels=${SYSTEMK_NODE_LABELS-}
node_labels_set=${SYSTEMK_NODE_LABELS+yes}
taints=${SYSTEMK_REGISTER_WITH_TAINTS-}
taints_set=${SYSTEMK_REGISTER_WITH_TAINTS+yes}
disable_taint=
case ${SYSTEMK_DISABLE_TAINT-} in
  1 | yes | true) disable_taint=yes ;;
  0 | no | false) disable_taint=no ;;
  '') ;;
  *) die "SYSTEMK_DISABLE_TAINT must be 1 or 0, not \"$SYSTEMK_DISABLE_TAINT\"" ;;
esac
extra_flags=${SYSTEMK_EXTRA_FLAGS-}
extra_flags_set=${SYSTEMK_EXTRA_FLAGS+yes}
start=yes
action=install

need_value() {
  [ "$2" -ge 2 ] || die "$1 needs a value"
}

while [ "$#" -gt 0 ]; do
  case $1 in
    --*=*)
      # --flag=value is --flag value.
      flag=${1%%=*}
      value=${1#*=}
      shift
      set -- "$flag" "$value" "$@"
      continue
      ;;
  esac
  case $1 in
    --url) need_value "$1" "$#"; url=$2; shift ;;
    --sha256) need_value "$1" "$#"; sha256=$2; shift ;;
    --binary) need_value "$1" "$#"; binary=$2; shift ;;
    --from-source) need_value "$1" "$#"; source_dir=$2; shift ;;
    --kubeconfig) need_value "$1" "$#"; kubeconfig=$2; shift ;;
    --server) need_value "$1" "$#"; server=$2; shift ;;
    --ca-file) need_value "$1" "$#"; ca_file=$2; shift ;;
    --token) need_value "$1" "$#"; token=$2; token_source=--token; shift ;;
    --token-file) need_value "$1" "$#"; token_file=$2; shift ;;
    --node-name | --nodename) need_value "$1" "$#"; node_name=$2; node_name_set=yes; shift ;;
    --node-ip) need_value "$1" "$#"; node_ip=$2; node_ip_set=yes; shift ;;
    --node-external-ip)
      need_value "$1" "$#"; node_external_ip=$2; node_external_ip_set=yes; shift ;;
    --node-labels) need_value "$1" "$#"; node_labels=$2; node_labels_set=yes; shift ;;
    --register-with-taints) need_value "$1" "$#"; taints=$2; taints_set=yes; shift ;;
    --disable-taint) disable_taint=yes ;;
    --taint) disable_taint=no ;;
    --extra-flags) need_value "$1" "$#"; extra_flags=$2; extra_flags_set=yes; shift ;;
    --no-start) start=no ;;
    --uninstall) action=uninstall ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option \"$1\" (see --help)" ;;
  esac
  shift
done

[ "$(id -u)" = 0 ] || die "run as root: systemk installs packages and runs pods as systemd units"
# sd_booted(3): this directory exists exactly when systemd is PID 1.
[ -d /run/systemd/system ] || die "systemd is not running as PID 1 here; systemk needs it"

# --- the manifest of what install.sh created ----------------------------------------------

# One line per path: "file PATH" (a file install.sh wrote), "dir PATH" (a directory it made,
# removed only if empty), "tree PATH" (a directory it made whose contents are its own or
# systemk's state, removed whole).
record() {
  mkdir -p "$LIB"
  if [ ! -f "$MANIFEST" ]; then
    : >"$MANIFEST"
    # The manifest and its directory are install.sh's own too.
    printf 'dir %s\nfile %s\n' "$LIB" "$MANIFEST" >>"$MANIFEST"
  fi
  grep -qxF "$1 $2" "$MANIFEST" || printf '%s %s\n' "$1" "$2" >>"$MANIFEST"
}

# make_dir KIND MODE PATH: makes PATH (and parents) unless it exists, and records what it made.
make_dir() {
  if [ ! -d "$3" ]; then
    [ -d "$(dirname "$3")" ] || make_dir dir 0755 "$(dirname "$3")"
    mkdir -m "$2" "$3"
    record "$1" "$3"
  fi
}

# put_file MODE SOURCE DEST: replaces DEST atomically (a running systemk keeps its old file).
put_file() {
  make_dir dir 0755 "$(dirname "$3")"
  tmp="$3.install-tmp.$$"
  cp "$2" "$tmp"
  chmod "$1" "$tmp"
  mv -f "$tmp" "$3"
  record file "$3"
}

# --- uninstall ----------------------------------------------------------------------------

uninstall() {
  if systemctl cat "$UNIT" >/dev/null 2>&1; then
    say "stopping and disabling $UNIT"
    systemctl disable --now "$UNIT" || true
  fi
  if [ ! -f "$MANIFEST" ]; then
    say "nothing to remove: $MANIFEST lists nothing (not installed by install.sh?)"
    return 0
  fi
  # logind keeps the delay systemk gave it until it rereads its configuration.
  logind_drop_in=no
  [ -f "$LOGIND_DROP_IN" ] && logind_drop_in=yes
  # Files first, then trees, then directories deepest first (so parents are empty by then).
  # Paths are install.sh's own fixed ones: no whitespace in them.
  files=$(sed -n 's/^file //p' "$MANIFEST")
  trees=$(sed -n 's/^tree //p' "$MANIFEST")
  dirs=$(sed -n 's/^dir //p' "$MANIFEST" | sort -r)
  for file in $files; do rm -f "$file"; done
  for tree in $trees; do rm -rf "$tree"; done
  for dir in $dirs; do
    rmdir "$dir" 2>/dev/null || say "kept $dir: it holds files install.sh did not write"
  done
  systemctl daemon-reload
  systemctl reset-failed "$UNIT" 2>/dev/null || true
  if [ "$logind_drop_in" = yes ]; then
    systemctl kill --signal=HUP systemd-logind.service 2>/dev/null || true
  fi
  say "removed systemk. Packages that pods installed stay installed."
  # Pods' units are systemk.<namespace>.<pod>.<container>.service; systemk.service is gone.
  units=$(systemctl list-units --all --plain --no-legend 'systemk.*' |
    awk '$1 != "systemk.service" {print $1}')
  if [ -n "$units" ]; then
    say "pod units still here (no agent manages them now); stop them with:"
    say "  systemctl stop 'systemk.*'"
  fi
  say "the Node object stays in the cluster until deleted: kubectl delete node <name>"
}

if [ "$action" = uninstall ]; then
  uninstall
  exit 0
fi

# --- checks ---------------------------------------------------------------------------------

os_id=
os_like=
if [ -r /etc/os-release ]; then
  os_id=$(sed -n 's/^ID=//p' /etc/os-release | tr -d '"')
  os_like=$(sed -n 's/^ID_LIKE=//p' /etc/os-release | tr -d '"')
fi
case " $os_id $os_like " in
  *" debian "* | *" ubuntu "*) ;;
  *) die "unsupported OS \"${os_id:-unknown}\": systemk installs pod images with apt (Debian, Ubuntu)" ;;
esac

case $(uname -m) in
  x86_64 | amd64) arch=amd64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported architecture $(uname -m): systemk is built for amd64 and arm64" ;;
esac

# Reads one setting (the text after "NAME=") from the env file of an earlier run.
previous() {
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1 | sed 's/^"\(.*\)"$/\1/'
}

# quote WORD: WORD as one single-quoted shell word, whatever characters it holds.
quote() {
  printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"
}

# A value goes into the env file, a systemd EnvironmentFile= whose variables are split at
# whitespace on the ExecStart= line; so no whitespace, quotes or backslashes in one value.
plain() {
  case $2 in
    *[[:space:]\"\'\\]*) die "$1 must not contain spaces, quotes or backslashes: \"$2\"" ;;
  esac
}

sources=0
for s in "$url" "$binary" "$source_dir"; do [ -z "$s" ] || sources=$((sources + 1)); done
[ "$sources" -le 1 ] || die "give one of --url, --binary and --from-source"
if [ "$sources" = 0 ]; then
  case $(previous SOURCE) in
    url:*) url=$(previous SOURCE | sed 's/^url://') ;;
    source:*) source_dir=$(previous SOURCE | sed 's/^source://') ;;
    binary:*) die "the previous run installed a local binary; give --binary PATH again" ;;
    *) die "where should systemk come from? give --url, --binary or --from-source (see --help)" ;;
  esac
fi

workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
trap 'exit 130' INT TERM

# --- systemk itself -------------------------------------------------------------------------

fetch() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL --retry 3 -o "$2" "$1"
  elif command -v wget >/dev/null 2>&1; then
    wget -q -O "$2" "$1"
  else
    die "need curl or wget to download $1"
  fi
}

check_sha256() {
  actual=$(sha256sum "$1" | cut -d ' ' -f 1)
  expected=$(printf '%s' "$2" | tr 'A-F' 'a-f')
  [ "$actual" = "$expected" ] || die "checksum mismatch for $3: expected $expected, got $actual"
}

# Deno for a source checkout: the one on PATH, else the version the checkout's own setup
# script pins, from npm (the same way scripts/setup.sh gets it).
deno_for_source() {
  if command -v deno >/dev/null 2>&1; then
    command -v deno
    return 0
  fi
  version=$(sed -n 's/^DENO_VERSION=//p' "$source_dir/scripts/setup.sh")
  [ -n "$version" ] || die "cannot tell the Deno version from $source_dir/scripts/setup.sh"
  prefix=$LIB/deno-$version
  if [ ! -x "$prefix/node_modules/.bin/deno" ]; then
    if ! command -v npm >/dev/null 2>&1; then
      say "installing npm (Debian packages nodejs, npm) to fetch Deno" >&2
      DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >&2
    fi
    say "installing Deno $version from npm into $prefix" >&2
    make_dir dir 0755 "$LIB"
    [ -d "$prefix" ] || {
      mkdir -p "$prefix"
      record tree "$prefix"
    }
    echo '{}' >"$prefix/package.json"
    npm install --silent --no-audit --no-fund --prefix "$prefix" "deno@$version" >&2
  fi
  echo "$prefix/node_modules/.bin/deno"
}

if [ -n "$source_dir" ]; then
  source_dir=$(cd "$source_dir" && pwd) || die "no such directory: $source_dir"
  if [ ! -f "$source_dir/main.ts" ] || [ ! -f "$source_dir/scripts/permissions.ts" ]; then
    die "$source_dir is not a systemk checkout (no main.ts, scripts/permissions.ts)"
  fi
  plain "--from-source" "$source_dir"
  deno=$(deno_for_source)
  (cd "$source_dir" && NO_COLOR=1 "$deno" install --frozen --quiet) ||
    die "could not fetch the checkout's npm modules (deno install in $source_dir)"
  # The one permission list, as the checkout defines it (the compiled binary gets the same).
  permissions=$(NO_COLOR=1 "$deno" run --quiet "$source_dir/scripts/permissions.ts") ||
    die "could not read the permission set from $source_dir/scripts/permissions.ts"
  # The paths are quoted: a checkout's directory name may hold ;, $( or ` (plain above only
  # keeps out what the env file cannot hold), which must not become commands run as root.
  cat >"$workdir/systemk" <<EOF
#!/bin/sh
# systemk from a source checkout, with the permission set of its scripts/permissions.ts;
# written by install.sh (--uninstall removes it).
exec $(quote "$deno") run --quiet $permissions $(quote "$source_dir/main.ts") "\$@"
EOF
  source_setting=source:$source_dir
  say "systemk from the source checkout $source_dir (Deno: $deno)"
elif [ -n "$binary" ]; then
  [ -f "$binary" ] || die "no such file: $binary"
  [ -z "$sha256" ] || check_sha256 "$binary" "$sha256" "$binary"
  cp "$binary" "$workdir/systemk"
  source_setting=binary:$binary
  say "systemk from $binary"
else
  url=$(printf '%s' "$url" | sed "s/{arch}/$arch/g")
  plain "--url" "$url"
  say "downloading $url"
  fetch "$url" "$workdir/systemk" || die "download of $url failed"
  if [ -z "$sha256" ]; then
    fetch "$url.sha256" "$workdir/systemk.sha256" ||
      die "no checksum: $url.sha256 failed to download; give --sha256 HEX"
    sha256=$(cut -d ' ' -f 1 <"$workdir/systemk.sha256")
    warn "no --sha256: checked against $url.sha256, from the same server as the binary." \
      "That catches a broken download, not a server (or a connection) serving another" \
      "binary; give --sha256 with the checksum from the release notes."
  fi
  check_sha256 "$workdir/systemk" "$sha256" "$url"
  source_setting=url:$url
fi
chmod 0755 "$workdir/systemk"
# A file that does not answer as systemk is not installed (e.g. an HTML error page).
version=$("$workdir/systemk" version 2>&1 | head -n 1) || true
case $version in
  "systemk "*) say "installing $version" ;;
  *) die "the new file does not run as systemk (\`systemk version\` said: $version)" ;;
esac

# --- settings -------------------------------------------------------------------------------

# Each systemk flag is one variable holding the whole flag (or nothing), so the unit's
# ExecStart= passes exactly the flags that are set.
flag_value() { previous "$1" | sed 's/^--[a-z-]*=//'; }

# Nothing is written before every setting is checked: a refused run leaves no trace.
# A token read from a file (or the environment) appears on no command line: not install.sh's,
# not that of a command it runs (printf is a shell builtin; head and tr get only the path).
if [ -n "$token_file" ]; then
  [ "$token_source" != --token ] || die "give one of --token and --token-file"
  [ -r "$token_file" ] || die "cannot read the token file $token_file"
  token=$(head -n 1 "$token_file" | tr -d ' \t\r')
  token_source="--token-file $token_file"
  [ -n "$token" ] || die "$token_file holds no token"
elif [ "$token_source" = --token ]; then
  warn "--token on the command line: every user of this machine can read it (ps) while" \
    "install.sh runs; give it with --token-file PATH or SYSTEMK_TOKEN instead"
fi
identity=
if [ -n "$token" ]; then
  [ -n "$server" ] || die "$token_source needs --server (the API server URL)"
  [ -n "$ca_file" ] || die "$token_source needs --ca-file (the cluster CA certificate)"
  [ -f "$ca_file" ] || die "no such file: $ca_file"
  plain --server "$server"
  printf '%s' "$token" | grep -Eqx '[a-z0-9]{6}\.[a-z0-9]{16}' ||
    die "$token_source must look like abcdef.0123456789abcdef (a bootstrap token)"
  "$workdir/systemk" --help 2>&1 | grep -q -- '--bootstrap-kubeconfig' ||
    die "this systemk has no --bootstrap-kubeconfig (TLS bootstrap); give --kubeconfig instead"
  ca_data=$(base64 <"$ca_file" | tr -d '\n')
  cat >"$workdir/bootstrap-kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: cluster
    cluster:
      server: $server
      certificate-authority-data: $ca_data
users:
  - name: bootstrap
    user:
      token: $token
contexts:
  - name: bootstrap
    context:
      cluster: cluster
      user: bootstrap
current-context: bootstrap
EOF
  identity=token
  flag_kubeconfig=--kubeconfig=$ISSUED_KUBECONFIG
  flag_bootstrap=--bootstrap-kubeconfig=$BOOTSTRAP_KUBECONFIG
  flag_cert_dir=--cert-dir=$CERT_DIR
elif [ -n "$kubeconfig" ]; then
  [ -f "$kubeconfig" ] || die "no such file: $kubeconfig"
  identity=kubeconfig
  flag_kubeconfig=--kubeconfig=$NODE_KUBECONFIG
  flag_bootstrap=
  flag_cert_dir=
else
  flag_kubeconfig=$(previous FLAG_KUBECONFIG)
  flag_bootstrap=$(previous FLAG_BOOTSTRAP_KUBECONFIG)
  flag_cert_dir=$(previous FLAG_CERT_DIR)
  [ -n "$flag_kubeconfig" ] ||
    die "how should the node join? give --kubeconfig, or --server, --ca-file and --token-file"
fi

[ "$node_name_set" = yes ] || node_name=$(flag_value FLAG_NODENAME)
[ "$node_ip_set" = yes ] || node_ip=$(flag_value FLAG_NODE_IP)
[ "$node_external_ip_set" = yes ] || node_external_ip=$(flag_value FLAG_NODE_EXTERNAL_IP)
[ "$node_labels_set" = yes ] || node_labels=$(flag_value FLAG_NODE_LABELS)
[ "$taints_set" = yes ] || taints=$(flag_value FLAG_REGISTER_WITH_TAINTS)
[ "$extra_flags_set" = yes ] || extra_flags=$(previous EXTRA_FLAGS)
if [ -z "$disable_taint" ]; then
  disable_taint=no
  [ "$(previous FLAG_DISABLE_TAINT)" != --disable-taint ] || disable_taint=yes
fi
plain --node-name "$node_name"
plain --node-ip "$node_ip"
plain --node-external-ip "$node_external_ip"
plain --node-labels "$node_labels"
plain --register-with-taints "$taints"
case $extra_flags in
  *[\"\'\\]*) die "--extra-flags must not contain quotes or backslashes" ;;
esac

# flag NAME VALUE: "--NAME=VALUE", or nothing for an empty value.
flag() { [ -z "$2" ] || printf -- '--%s=%s' "$1" "$2"; }

cat >"$workdir/systemk.env" <<EOF
# systemk's settings, written by install.sh: re-run it to change them (settings not given are
# kept), or edit this file and \`systemctl restart systemk\`. Each FLAG_ variable holds one
# whole systemk flag or nothing; EXTRA_FLAGS any others (\`systemk --help\` lists them).
SOURCE=$source_setting
FLAG_KUBECONFIG=$flag_kubeconfig
FLAG_BOOTSTRAP_KUBECONFIG=$flag_bootstrap
FLAG_CERT_DIR=$flag_cert_dir
FLAG_NODENAME=$(flag nodename "$node_name")
FLAG_NODE_IP=$(flag node-ip "$node_ip")
FLAG_NODE_EXTERNAL_IP=$(flag node-external-ip "$node_external_ip")
FLAG_NODE_LABELS=$(flag node-labels "$node_labels")
FLAG_REGISTER_WITH_TAINTS=$(flag register-with-taints "$taints")
FLAG_DISABLE_TAINT=$([ "$disable_taint" = no ] || echo --disable-taint)
EXTRA_FLAGS="$extra_flags"
EOF

cat >"$workdir/$UNIT" <<EOF
# systemk, the Kubernetes node agent running pods as systemd units. Written by install.sh
# (re-run it to upgrade; \`install.sh --uninstall\` removes it). Settings: $ENV_FILE.
[Unit]
Description=systemk: Kubernetes node agent running pods as systemd units
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
EnvironmentFile=$ENV_FILE
Environment=NO_COLOR=1
ExecStart=$BIN \$FLAG_KUBECONFIG \$FLAG_BOOTSTRAP_KUBECONFIG \$FLAG_CERT_DIR \$FLAG_NODENAME \$FLAG_NODE_IP \$FLAG_NODE_EXTERNAL_IP \$FLAG_NODE_LABELS \$FLAG_REGISTER_WITH_TAINTS \$FLAG_DISABLE_TAINT \$EXTRA_FLAGS
Restart=on-failure
RestartSec=5s
# /var/lib/systemk: package markers, the issued kubeconfig and certificates.
StateDirectory=systemk
StateDirectoryMode=0700
# /var/cache/systemk: downloaded .deb images.
CacheDirectory=systemk
CacheDirectoryMode=0700

[Install]
WantedBy=multi-user.target
EOF

# --- install --------------------------------------------------------------------------------

# The state directories are made here (systemd would make them on start) so that
# --uninstall knows they are systemk's and removes them.
make_dir tree 0700 "$STATE_DIR"
make_dir tree 0700 "$CACHE_DIR"
make_dir dir 0700 "$ETC"
# systemk writes this file when it raises logind's InhibitDelayMaxSec: --uninstall removes it.
make_dir dir 0755 "$(dirname "$LOGIND_DROP_IN")"
record file "$LOGIND_DROP_IN"
# One identity at a time: the file of the other way of joining goes.
case $identity in
  token)
    put_file 0600 "$workdir/bootstrap-kubeconfig" "$BOOTSTRAP_KUBECONFIG"
    rm -f "$NODE_KUBECONFIG"
    ;;
  kubeconfig)
    put_file 0600 "$kubeconfig" "$NODE_KUBECONFIG"
    rm -f "$BOOTSTRAP_KUBECONFIG"
    ;;
esac
put_file 0755 "$workdir/systemk" "$BIN"
put_file 0600 "$workdir/systemk.env" "$ENV_FILE"
put_file 0644 "$workdir/$UNIT" "$UNIT_FILE"
systemctl daemon-reload
systemctl enable "$UNIT" >/dev/null 2>&1
if [ "$start" = yes ]; then
  # restart starts it the first time and upgrades it on a re-run; pods' units are untouched.
  systemctl restart "$UNIT"
  # A systemk that cannot start (bad flags, unreadable kubeconfig) exits within moments.
  sleep 2
  if ! systemctl is-active --quiet "$UNIT"; then
    journalctl -u "$UNIT" -n 20 --no-pager >&2 || true
    die "$UNIT did not stay running (journalctl -u $UNIT shows why)"
  fi
  say "systemk is running: systemctl status $UNIT; journalctl -u $UNIT -f"
else
  say "installed and enabled; start it with: systemctl start $UNIT"
fi
say "next, from a machine with cluster admin access:"
say "  kubectl get nodes                 # ${node_name:-$(hostname)} should be Ready"
say "  kubectl apply -f k3s/uptimed.yaml # a first pod (from systemk's k3s/ directory)"
