/**
 * A real metrics-server (sigs.k8s.io/metrics-server v0.8.0) for tests, built from Go modules on
 * first use and cached by version, like the control plane (scripts/build-controlplane.sh).
 *
 * @module
 */

/** The metrics-server version the tests run. */
export const METRICS_SERVER_VERSION = "v0.8.0";

const GO = "/usr/local/go/bin/go";

/**
 * Path of the metrics-server binary, building it (minutes, cold) when the cache lacks it.
 * Concurrent callers wait on a lock for the first one's build.
 */
export async function metricsServerBinary(): Promise<string> {
  const dir = `${
    Deno.env.get("SYSTEMK_CACHE") ?? "/var/cache/systemk-dev"
  }/metrics-server/${METRICS_SERVER_VERSION}`;
  const binary = `${dir}/metrics-server`;
  await Deno.mkdir(dir, { recursive: true });
  const script = `
set -eu
exec 9>"$DIR/.lock"
flock 9
[ -x "$DIR/metrics-server" ] && exit 0
module="$(mktemp -d)"
trap 'rm -rf "$module"' EXIT
cd "$module"
"$GO" mod init systemk-metrics-server >/dev/null 2>&1
"$GO" get -tool "sigs.k8s.io/metrics-server/cmd/metrics-server@$VERSION" >&2
"$GO" build -o "$DIR/metrics-server.tmp" sigs.k8s.io/metrics-server/cmd/metrics-server >&2
mv "$DIR/metrics-server.tmp" "$DIR/metrics-server"
`;
  const out = await new Deno.Command("/bin/sh", {
    args: ["-c", script],
    env: { DIR: dir, GO, VERSION: METRICS_SERVER_VERSION },
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`building metrics-server ${METRICS_SERVER_VERSION} failed`);
  return binary;
}
