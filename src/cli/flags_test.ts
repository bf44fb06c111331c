import assert from "node:assert/strict";
import {
  imagePolicy,
  localNodeOptions,
  parseFlags,
  securityPolicy,
  usage,
  UsageError,
} from "./flags.ts";
import { DEFAULT_SECURITY_POLICY } from "../plan/types.ts";
import { DEFAULT_IMAGE_POLICY } from "../packages/policy.ts";

Deno.test("the seed's command line keeps working", () => {
  const { config } = parseFlags([
    "--kubeconfig",
    "/etc/k.conf",
    "--nodename",
    "draak",
    "--disable-taint",
    "--node-ip",
    "10.0.0.2",
    "--node-external-ip",
    "2001:db8::2",
  ]);
  assert.equal(config.kubeconfig, "/etc/k.conf");
  assert.equal(config.nodeName, "draak");
  assert.equal(config.disableTaint, true);
  assert.equal(config.nodeIP, "10.0.0.2");
  assert.equal(config.nodeExternalIP, "2001:db8::2");
  assert.deepEqual(localNodeOptions(config), {
    nodeName: "draak",
    internalIP: "10.0.0.2",
    externalIP: "2001:db8::2",
  });
});

Deno.test("the seed's --flag=value form and cert flags", () => {
  const { config } = parseFlags([
    "--kubeconfig=n.kubeconfig",
    "--nodename=n1",
    "--certfile=c.pem",
    "--keyfile=k.pem",
  ]);
  assert.equal(config.kubeconfig, "n.kubeconfig");
  assert.equal(config.nodeName, "n1");
  assert.equal(config.tlsCertFile, "c.pem");
  assert.equal(config.tlsKeyFile, "k.pem");
  assert.equal(config.disableTaint, false);
});

Deno.test("kubelet-style names map to the same settings, defaults applied", () => {
  const { config, positionals } = parseFlags([
    "--hostname-override=n2",
    "--tls-cert-file=c",
    "--pod-manifest-path",
    "/etc/systemk/pods",
    "--max-pods=500",
    "plan",
  ]);
  assert.equal(config.nodeName, "n2");
  assert.equal(config.tlsCertFile, "c");
  assert.equal(config.podManifestPath, "/etc/systemk/pods");
  assert.equal(config.maxPods, 500);
  assert.equal(config.port, 10250);
  assert.equal(config.stateDir, "/run/systemk");
  assert.equal(config.certDir, "/var/lib/systemk/pki");
  assert.equal(config.address, "0.0.0.0");
  assert.equal(config.rotateServerCertificates, false);
  assert.equal(config.clientCAFile, undefined);
  assert.deepEqual(positionals, ["plan"]);
});

Deno.test("the kubelet's TLS and authentication flags", () => {
  const { config } = parseFlags([
    "--client-ca-file=/etc/kubernetes/pki/ca.crt",
    "--rotate-server-certificates",
    "--bootstrap-kubeconfig",
    "/etc/systemk/bootstrap.kubeconfig",
    "--cert-dir=/var/lib/systemk/certs",
    "--address=127.0.0.1",
  ]);
  assert.equal(config.clientCAFile, "/etc/kubernetes/pki/ca.crt");
  assert.equal(config.rotateServerCertificates, true);
  assert.equal(config.bootstrapKubeconfig, "/etc/systemk/bootstrap.kubeconfig");
  assert.equal(config.certDir, "/var/lib/systemk/certs");
  assert.equal(config.address, "127.0.0.1");
});

Deno.test("--node-labels and --register-with-taints, checked as the kubelet checks them", () => {
  const { config } = parseFlags([
    "--node-labels=tier=edge,node.kubernetes.io/pool=a",
    "--register-with-taints",
    "dedicated=edge:NoSchedule",
  ]);
  assert.deepEqual(config.nodeLabels, { tier: "edge", "node.kubernetes.io/pool": "a" });
  assert.deepEqual(config.registerWithTaints, [
    { key: "dedicated", value: "edge", effect: "NoSchedule" },
  ]);
  const none = parseFlags([]).config;
  assert.deepEqual([none.nodeLabels, none.registerWithTaints], [{}, []]);
  assert.throws(
    () => parseFlags(["--node-labels=node-role.kubernetes.io/worker="]),
    (e: Error) =>
      e instanceof UsageError &&
      /labels specified with --node-labels: \[node-role\.kubernetes\.io\/worker\]/.test(e.message),
  );
  assert.throws(() => parseFlags(["--register-with-taints=a=b"]), /--register-with-taints/);
});

Deno.test("the node log flags: handler on and query off by default; =false turns one off", () => {
  const defaults = parseFlags([]).config;
  assert.equal(defaults.enableSystemLogHandler, true);
  assert.equal(defaults.enableSystemLogQuery, false);
  const { config } = parseFlags([
    "--enable-system-log-query",
    "--enable-system-log-handler=false",
  ]);
  assert.equal(config.enableSystemLogQuery, true);
  assert.equal(config.enableSystemLogHandler, false);
  assert.equal(parseFlags(["--disable-taint=true"]).config.disableTaint, true);
  assert.throws(() => parseFlags(["--enable-system-log-query=yes"]), /true or false/);
});

Deno.test("bad command lines name the flag", () => {
  assert.throws(() => parseFlags(["--max-pods=lots"]), /--max-pods needs a non-negative integer/);
  assert.throws(() => parseFlags(["--nodename=a", "--hostname-override=b"]), UsageError);
  assert.throws(() => parseFlags(["--no-such-flag"]), UsageError);
  assert.throws(() => parseFlags(["--log-level=loud"]), /--log-level/);
  // The kubelet's --v takes klog's verbosity: 4 and above is its debug detail.
  assert.equal(parseFlags(["--v", "2"]).config.logLevel, "info");
  assert.equal(parseFlags(["--v=4"]).config.logLevel, "debug");
  assert.equal(parseFlags(["--log-level", "0"]).config.logLevel, "info");
  assert.throws(() => parseFlags(["--log-format=xml"]), /--log-format must be text or json/);
});

Deno.test("--log-format: text by default, json by either name", () => {
  assert.equal(parseFlags([]).config.logFormat, "text");
  assert.equal(parseFlags(["--log-format=json"]).config.logFormat, "json");
  assert.equal(parseFlags(["--logging-format", "json"]).config.logFormat, "json");
});

Deno.test("usage lists every flag name", () => {
  const text = usage();
  for (const name of ["--kubeconfig", "--nodename", "--disable-taint", "--node-external-ip"]) {
    assert.ok(text.includes(name), name);
  }
});

Deno.test("shutdown grace periods: Go durations in whole seconds, 30s and 10s by default", () => {
  const defaults = parseFlags([]).config;
  assert.deepEqual([defaults.shutdownGracePeriod, defaults.shutdownGracePeriodCriticalPods], [
    30,
    10,
  ]);
  const { config } = parseFlags([
    "--shutdown-grace-period=1m30s",
    "--shutdown-grace-period-critical-pods",
    "1.5s",
  ]);
  assert.deepEqual([config.shutdownGracePeriod, config.shutdownGracePeriodCriticalPods], [90, 1]);
  const off = parseFlags(["--shutdown-grace-period=0"]);
  assert.deepEqual([off.config.shutdownGracePeriod, off.config.shutdownGracePeriodCriticalPods], [
    0,
    0,
  ]);
});

Deno.test("shutdown grace periods: a bad duration or a critical share past the whole is refused", () => {
  assert.throws(
    () => parseFlags(["--shutdown-grace-period=30"]),
    (e) => e instanceof UsageError && /--shutdown-grace-period needs a duration/.test(e.message),
  );
  assert.throws(() => parseFlags(["--shutdown-grace-period=30x"]), UsageError);
  assert.throws(() => parseFlags(["--shutdown-grace-period=-5s"]), UsageError);
  assert.throws(
    () => parseFlags(["--shutdown-grace-period=20s", "--shutdown-grace-period-critical-pods=30s"]),
    /--shutdown-grace-period-critical-pods \(30s\) must not be longer than --shutdown-grace-period \(20s\)/,
  );
  // The critical pods' default share (10 s) does not fit in 5 s: the message says which flag.
  assert.throws(() => parseFlags(["--shutdown-grace-period=5s"]), /critical-pods \(10s\)/);
});

Deno.test("policy flags: defaults are the planner's and packages' defaults", () => {
  const { config } = parseFlags([]);
  assert.deepEqual(securityPolicy(config), DEFAULT_SECURITY_POLICY);
  assert.deepEqual(imagePolicy(config), { ...DEFAULT_IMAGE_POLICY, allowedPackages: undefined });
});

Deno.test("policy flags: values, kubelet-style booleans, and usage errors naming the flag", () => {
  const { config } = parseFlags([
    "--allowed-image-url-prefixes=https://debs.example/pool/, https://other.example/x",
    "--require-image-digest=false",
    "--allow-package-downgrades",
    "--allowed-packages=nginx,uptimed",
    "--allow-privileged=false",
    "--allowed-host-users=nobody,1001",
    "--allowed-host-groups=",
    "--pod-id-range=100000-199999,5000",
  ]);
  assert.deepEqual(imagePolicy(config), {
    allowedURLPrefixes: ["https://debs.example/pool/", "https://other.example/x"],
    requireDigest: false,
    allowDowngrades: true,
    allowedPackages: ["nginx", "uptimed"],
  });
  assert.deepEqual(securityPolicy(config), {
    allowPrivileged: false,
    allowedHostUsers: ["nobody", "1001"],
    allowedHostGroups: [],
    podIDRanges: [{ min: 100000, max: 199999 }, { min: 5000, max: 5000 }],
  });
  assert.equal(parseFlags(["--disable-taint=true"]).config.disableTaint, true);
  assert.equal(parseFlags(["--allow-privileged=true"]).config.allowPrivileged, true);
  for (
    const [args, message] of [
      [["--allow-privileged=no"], /--allow-privileged is true or false, not "no"/],
      [["--allowed-image-url-prefixes=http://x/"], /needs https:\/\/ URLs/],
      [["--allowed-image-url-prefixes=https://u:p@x/"], /without credentials/],
      [["--allowed-packages=Nginx"], /--allowed-packages needs Debian package names/],
      [["--allowed-host-users=a b"], /--allowed-host-users needs names or ids/],
      [["--pod-id-range=5-1"], /--pod-id-range needs ranges/],
      [["--pod-id-range=1-2147483648"], /--pod-id-range needs ranges/],
    ] as [string[], RegExp][]
  ) {
    assert.throws(
      () => parseFlags(args),
      (e) => e instanceof UsageError && message.test(e.message),
    );
  }
});
