/**
 * A real Kubernetes control plane for tests: etcd, kube-apiserver, kube-controller-manager and
 * kube-scheduler built from Go modules (scripts/build-controlplane.sh), configured the way a
 * kubeadm cluster is (Node+RBAC authorization, NodeRestriction, bootstrap tokens, CSR signing,
 * the aggregation layer with its front-proxy CA, so an APIService such as metrics-server's
 * serves `kubectl top`), with certificates made by `openssl` in the test's own directory. Several clusters can run at
 * once: every listening port is picked free on the bind address.
 *
 * @module
 */

import { dirname } from "node:path";

/** Options for {@linkcode startTestCluster}. */
export interface TestClusterOptions {
  /**
   * Directory for certificates, kubeconfigs, etcd data and logs. When given, the caller owns it
   * and {@linkcode TestCluster.stop} leaves it in place; by default a fresh temporary directory
   * is made and removed on stop.
   */
  dir?: string;
  /**
   * Address the apiserver listens on and advertises (default 127.0.0.1). Tests whose nodes live
   * in a network namespace pass the host end of their veth pair here, because Kubernetes refuses
   * loopback addresses in EndpointSlices.
   */
  bindAddress?: string;
  /**
   * Writes an audit log of every request at `Metadata` level (who, verb, resource, times; no
   * bodies) to {@linkcode TestCluster.auditLogPath}, one JSON event per line; benchmarks count
   * a node's requests with it. Off by default.
   */
  auditLog?: boolean;
  /**
   * Extra kube-controller-manager flags, after the defaults (a repeated flag wins), e.g.
   * `--node-monitor-grace-period=10s` so a node whose agent stopped goes NotReady in seconds
   * rather than the default 50 s.
   */
  controllerManagerFlags?: string[];
}

/** Result of a finished command. */
export interface CommandResult {
  /** Exit code. */
  code: number;
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
}

/** A process the cluster started, for tests that check nothing outlives {@linkcode TestCluster.stop}. */
export interface ClusterProcess {
  /** Component name (etcd, kube-apiserver, ...). */
  name: string;
  /** Process id. */
  pid: number;
}

/** The components a fault test may stop and start again. */
export type StoppableComponent = "kube-apiserver" | "etcd";

/** A running control plane. */
export interface TestCluster extends AsyncDisposable {
  /** The apiserver's https URL. */
  server: string;
  /** PEM file of the cluster CA, which signs every certificate of this cluster. */
  caFile: string;
  /** The cluster's working directory (certificates, kubeconfigs, `logs/`). */
  dir: string;
  /** Kubeconfig of a cluster admin (group system:masters). */
  adminKubeconfig: string;
  /** The audit log (JSON lines) when started with `auditLog: true`, else undefined. */
  auditLogPath?: string;
  /** Directory of the control-plane binaries. */
  binDir: string;
  /** The kubectl built at the cluster's own version. */
  kubectlPath: string;
  /** The processes this cluster started, in start order. */
  processes: readonly ClusterProcess[];
  /**
   * Writes a kubeconfig authenticating as the node `nodeName` (CN=system:node:<name>,
   * O=system:nodes, signed by the cluster CA) and returns its path. Certificates are embedded,
   * so the file works wherever it is copied.
   */
  nodeKubeconfig(nodeName: string): Promise<string>;
  /**
   * Runs the cluster's kubectl, as the cluster admin unless `opts.kubeconfig` names another
   * kubeconfig (`/dev/null` to authenticate with flags such as `--token` alone).
   */
  kubectl(args: string[], opts?: { stdin?: string; kubeconfig?: string }): Promise<CommandResult>;
  /**
   * Creates a bootstrap token (`<id>.<secret>`) and the kubeadm-style RBAC that lets
   * system:bootstrappers create node CSRs and gets node client CSRs approved automatically.
   */
  createBootstrapToken(): Promise<string>;
  /**
   * Stops the named components (SIGTERM, in the order given), leaving the others running: the
   * apiserver then etcd for an outage of the control plane's API, or etcd alone under a running
   * apiserver. Fault tests use it.
   */
  stopComponents(names: readonly StoppableComponent[]): Promise<void>;
  /**
   * Starts stopped components again (in the order given) with the same ports, flags and data,
   * and resolves once the apiserver's /readyz answers ok (which includes etcd's health).
   */
  startComponents(names: readonly StoppableComponent[]): Promise<void>;
  /** Stops the processes this cluster started and removes its directory (see options). */
  stop(): Promise<void>;
}

const BUILD_SCRIPT = new URL("../../scripts/build-controlplane.sh", import.meta.url).pathname;
const SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16";
/** First address of the service range: the `kubernetes` Service's ClusterIP. */
const KUBERNETES_SERVICE_IP = "10.96.0.1";
const READY_TIMEOUT_MS = 120_000;
const STOP_GRACE_MS = 10_000;

let binDirPromise: Promise<string> | undefined;

/**
 * Returns the directory holding the control-plane binaries, building them on first use. The
 * build script is asked once per process; it answers from its cache in well under a second.
 */
export function controlPlaneBinDir(): Promise<string> {
  binDirPromise ??= (async () => {
    const result = await run(BUILD_SCRIPT, [], { inheritStderr: true });
    const binDir = result.stdout.trim().split("\n").at(-1);
    if (result.code !== 0 || !binDir) {
      binDirPromise = undefined;
      throw new Error(`${BUILD_SCRIPT} failed with code ${result.code}`);
    }
    return binDir;
  })();
  return binDirPromise;
}

/** Starts a control plane and resolves once it serves requests and has its default ServiceAccount. */
export async function startTestCluster(opts: TestClusterOptions = {}): Promise<TestCluster> {
  const binDir = await controlPlaneBinDir();
  const bindAddress = opts.bindAddress ?? "127.0.0.1";
  const [etcdClientPort, etcdPeerPort] = freePorts("127.0.0.1", 2);
  const [apiserverPort] = freePorts(bindAddress, 1);
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "systemk-cluster-" });
  const pki = pkiPaths(dir);
  const cluster = new RunningCluster({
    dir,
    ownsDir: opts.dir === undefined,
    binDir,
    server: `https://${urlHost(bindAddress)}:${apiserverPort}`,
    caFile: pki.ca.cert,
    auditLogPath: opts.auditLog ? `${dir}/logs/audit.log` : undefined,
  });
  try {
    await Deno.mkdir(`${dir}/logs`, { recursive: true });
    await writePki(pki, bindAddress);
    const users = {
      admin: pki.admin,
      scheduler: pki.scheduler,
      controllerManager: pki.controllerManager,
    };
    await Promise.all(
      Object.entries(users).map(([user, cert]) =>
        writeKubeconfig(`${dir}/${user}.kubeconfig`, cluster.server, pki.ca.cert, cert)
      ),
    );
    const etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    cluster.spawn("etcd", etcdArgs(dir, etcdUrl, `http://127.0.0.1:${etcdPeerPort}`));
    const auditArgs = cluster.auditLogPath ? await auditLogArgs(dir, cluster.auditLogPath) : [];
    cluster.spawn("kube-apiserver", [
      ...apiserverArgs(pki, etcdUrl, bindAddress, apiserverPort),
      ...auditArgs,
    ]);
    // The controller-manager gives up if the apiserver is not healthy soon after it starts.
    await cluster.waitReady();
    cluster.spawn(
      "kube-controller-manager",
      [
        ...controllerManagerArgs(pki, `${dir}/controllerManager.kubeconfig`),
        ...(opts.controllerManagerFlags ?? []),
      ],
    );
    cluster.spawn("kube-scheduler", schedulerArgs(`${dir}/scheduler.kubeconfig`));
    // Pods cannot be created in a namespace before its default ServiceAccount exists.
    await cluster.waitFor("the default ServiceAccount", async () => {
      const r = await cluster.kubectl(["get", "serviceaccount", "default", "--namespace=default"]);
      return r.code === 0;
    });
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

function etcdArgs(dir: string, clientUrl: string, peerUrl: string): string[] {
  return [
    "--name=default",
    `--data-dir=${dir}/etcd`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    // A test cluster's data dies with the test; fsync only costs time.
    "--unsafe-no-fsync",
  ];
}

function apiserverArgs(pki: Pki, etcdUrl: string, bindAddress: string, port: number): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    `--bind-address=${bindAddress}`,
    // Set explicitly: left unset with a loopback bind address, the apiserver would advertise the
    // host's own interface address.
    `--advertise-address=${bindAddress}`,
    `--secure-port=${port}`,
    `--tls-cert-file=${pki.apiserver.cert}`,
    `--tls-private-key-file=${pki.apiserver.key}`,
    `--client-ca-file=${pki.ca.cert}`,
    "--authorization-mode=Node,RBAC",
    "--enable-admission-plugins=NodeRestriction",
    "--enable-bootstrap-token-auth",
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
    `--service-account-key-file=${pki.serviceAccount.pub}`,
    `--service-account-signing-key-file=${pki.serviceAccount.key}`,
    `--kubelet-client-certificate=${pki.kubeletClient.cert}`,
    `--kubelet-client-key=${pki.kubeletClient.key}`,
    `--kubelet-certificate-authority=${pki.ca.cert}`,
    "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
    "--allow-privileged=true",
    // The aggregation layer, as kubeadm sets it up: the apiserver proxies an APIService's
    // requests with the front-proxy client certificate and the user in these headers; the
    // extension server trusts them through the front-proxy CA (published in kube-system's
    // extension-apiserver-authentication ConfigMap). There is no kube-proxy, so the apiserver
    // dials the Service's endpoints itself.
    `--requestheader-client-ca-file=${pki.frontProxyCA.cert}`,
    "--requestheader-allowed-names=front-proxy-client",
    "--requestheader-username-headers=X-Remote-User",
    "--requestheader-group-headers=X-Remote-Group",
    "--requestheader-extra-headers-prefix=X-Remote-Extra-",
    `--proxy-client-cert-file=${pki.frontProxyClient.cert}`,
    `--proxy-client-key-file=${pki.frontProxyClient.key}`,
    "--enable-aggregator-routing=true",
  ];
}

/**
 * Writes an audit policy logging every request once at `Metadata` level and returns the
 * apiserver flags using it. `RequestReceived` is omitted: a request then appears once when it
 * completes, and a watch also once when its response starts.
 */
async function auditLogArgs(dir: string, logPath: string): Promise<string[]> {
  const policyPath = `${dir}/audit-policy.json`;
  const policy = {
    apiVersion: "audit.k8s.io/v1",
    kind: "Policy",
    omitStages: ["RequestReceived"],
    rules: [{ level: "Metadata" }],
  };
  await Deno.writeTextFile(policyPath, JSON.stringify(policy));
  return [
    `--audit-policy-file=${policyPath}`,
    `--audit-log-path=${logPath}`,
    "--audit-log-maxbackup=0",
  ];
}

function controllerManagerArgs(pki: Pki, kubeconfig: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    "--controllers=*,bootstrapsigner,tokencleaner",
    "--use-service-account-credentials",
    `--service-account-private-key-file=${pki.serviceAccount.key}`,
    `--root-ca-file=${pki.ca.cert}`,
    `--cluster-signing-cert-file=${pki.ca.cert}`,
    `--cluster-signing-key-file=${pki.ca.key}`,
    `--service-cluster-ip-range=${SERVICE_CLUSTER_IP_RANGE}`,
    // With --use-service-account-credentials every controller fetches its own token; the
    // default client rate limit (20 qps) then spreads the controllers' start over seconds.
    "--kube-api-qps=200",
    "--kube-api-burst=400",
    // One instance per cluster: electing a leader would only delay the start.
    "--leader-elect=false",
    // Port 0 serves no HTTPS, so parallel clusters never compete for port 10257.
    "--secure-port=0",
  ];
}

function schedulerArgs(kubeconfig: string): string[] {
  return [`--kubeconfig=${kubeconfig}`, "--leader-elect=false", "--secure-port=0"];
}

/** A component process and the promise of its exit status. */
interface Started {
  name: string;
  child: Deno.ChildProcess;
  status: Promise<Deno.CommandStatus>;
  exited: boolean;
  log: string;
}

class RunningCluster implements TestCluster {
  readonly dir: string;
  readonly binDir: string;
  readonly server: string;
  readonly caFile: string;
  readonly adminKubeconfig: string;
  readonly auditLogPath?: string;
  readonly kubectlPath: string;
  readonly #ownsDir: boolean;
  readonly #started: Started[] = [];
  /** Arguments of each component, so a stopped one starts again exactly as before. */
  readonly #args = new Map<string, string[]>();
  #stopped = false;

  constructor(
    init: {
      dir: string;
      ownsDir: boolean;
      binDir: string;
      server: string;
      caFile: string;
      auditLogPath?: string;
    },
  ) {
    ({ dir: this.dir, binDir: this.binDir, server: this.server, caFile: this.caFile } = init);
    this.auditLogPath = init.auditLogPath;
    this.#ownsDir = init.ownsDir;
    this.adminKubeconfig = `${this.dir}/admin.kubeconfig`;
    this.kubectlPath = `${this.binDir}/kubectl`;
  }

  /**
   * Starts a cached binary with stdout and stderr appended to `<dir>/logs/<name>.log`. `sh` only
   * sets up the redirection and then `exec`s, so the PID held is the component's own.
   */
  spawn(name: string, args: string[]): void {
    const log = `${this.dir}/logs/${name}.log`;
    this.#args.set(name, args);
    const child = new Deno.Command("/bin/sh", {
      args: ["-c", 'exec "$@" >>"$COMPONENT_LOG" 2>&1', "sh", `${this.binDir}/${name}`, ...args],
      env: { COMPONENT_LOG: log },
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const started: Started = { name, child, status: child.status, exited: false, log };
    started.status.then(() => started.exited = true);
    this.#started.push(started);
  }

  /**
   * Polls `check` until it holds. Fails early, with the end of its log, when a component exits,
   * because a crashed apiserver would otherwise only show up as a timeout.
   */
  async waitFor(what: string, check: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      const dead = this.#started.find((p) => p.exited);
      if (dead) {
        throw new Error(`${dead.name} exited while waiting for ${what}:\n${await logTail(dead)}`);
      }
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`timed out after ${READY_TIMEOUT_MS} ms waiting for ${what}`);
  }

  get processes(): readonly ClusterProcess[] {
    return this.#started.map((p) => ({ name: p.name, pid: p.child.pid }));
  }

  async nodeKubeconfig(nodeName: string): Promise<string> {
    const cert = keyPair(this.dir, `node-${nodeName}`);
    await issueCert(pkiPaths(this.dir).ca, cert, {
      subject: `/O=system:nodes/CN=system:node:${nodeName}`,
      usage: "clientAuth",
    });
    const path = `${this.dir}/node-${nodeName}.kubeconfig`;
    await writeKubeconfig(path, this.server, this.caFile, cert);
    return path;
  }

  kubectl(
    args: string[],
    opts: { stdin?: string; kubeconfig?: string } = {},
  ): Promise<CommandResult> {
    const kubeconfig = opts.kubeconfig ?? this.adminKubeconfig;
    return run(this.kubectlPath, [`--kubeconfig=${kubeconfig}`, ...args], { stdin: opts.stdin });
  }

  async createBootstrapToken(): Promise<string> {
    const id = randomToken(6);
    const secret = randomToken(16);
    const manifest = bootstrapTokenManifest(id, secret, new Date(Date.now() + 3600_000));
    const r = await this.kubectl(["apply", "-f", "-"], { stdin: JSON.stringify(manifest) });
    if (r.code !== 0) throw new Error(`creating the bootstrap token failed: ${r.stderr}`);
    return `${id}.${secret}`;
  }

  async stopComponents(names: readonly StoppableComponent[]): Promise<void> {
    for (const name of names) {
      const stopping = this.#started.filter((p) => p.name === name);
      await Promise.all(stopping.map(terminate));
      // Forgotten, so waitFor does not take the planned exit for a crash.
      this.#started.splice(
        0,
        this.#started.length,
        ...this.#started.filter((p) => p.name !== name),
      );
    }
  }

  async startComponents(names: readonly StoppableComponent[]): Promise<void> {
    for (const name of names) {
      if (this.#started.some((p) => p.name === name && !p.exited)) continue;
      const args = this.#args.get(name);
      if (!args) throw new Error(`${name} was never started`);
      this.spawn(name, args);
    }
    await this.waitReady();
  }

  /** Resolves once the apiserver's /readyz answers ok. */
  waitReady(): Promise<void> {
    return this.waitFor("the apiserver's /readyz", async () => {
      const r = await this.kubectl(["get", "--raw=/readyz"]);
      return r.code === 0 && r.stdout.trim() === "ok";
    });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    // Clients first, then the apiserver, then its storage: each stops while what it talks to is
    // still there, which keeps shutdowns quick and the logs free of connection errors.
    for (
      const stage of [["kube-scheduler", "kube-controller-manager"], ["kube-apiserver"], ["etcd"]]
    ) {
      await Promise.all(this.#started.filter((p) => stage.includes(p.name)).map(terminate));
    }
    if (this.#ownsDir && Deno.env.get("SYSTEMK_KEEP_TEST_DIRS") !== "1") {
      await Deno.remove(this.dir, { recursive: true });
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.stop();
  }
}

/** SIGTERM, then SIGKILL if the process is still there after a grace period. */
async function terminate(p: Started): Promise<void> {
  if (p.exited) return;
  p.child.kill("SIGTERM");
  const timer = setTimeout(() => p.exited || p.child.kill("SIGKILL"), STOP_GRACE_MS);
  await p.status;
  clearTimeout(timer);
}

/** The last lines of a component's log, for error messages. */
async function logTail(p: Started): Promise<string> {
  const text = await Deno.readTextFile(p.log).catch(() => "");
  return text.trimEnd().split("\n").slice(-30).join("\n");
}

/** Runs a command to completion, optionally feeding it stdin. */
async function run(
  cmd: string,
  args: string[],
  opts: { stdin?: string; inheritStderr?: boolean } = {},
): Promise<CommandResult> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: opts.inheritStderr ? "inherit" : "piped",
  }).spawn();
  if (opts.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(opts.stdin));
    await writer.close();
  }
  const out = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return {
    code: out.code,
    stdout: decode(out.stdout),
    stderr: opts.inheritStderr ? "" : decode(out.stderr),
  };
}

/**
 * Ports the kernel reports free on `host`. All listeners are held open together so the ports
 * differ; another process may still take one before the component binds it, a rare race that
 * shows up as a start failure with "address already in use" in the component's log. Tests use
 * it too, so that parallel nodes never compete for a fixed port such as 10250.
 */
export function freePorts(host: string, count: number): number[] {
  const listeners = Array.from({ length: count }, () => Deno.listen({ hostname: host, port: 0 }));
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

function urlHost(address: string): string {
  return address.includes(":") ? `[${address}]` : address;
}

/** Paths of a certificate and its private key (PEM). */
interface KeyPair {
  cert: string;
  key: string;
}

/** What a certificate is for; decides its extensions. */
interface CertRequest {
  /** OpenSSL `-subj` form, e.g. `/O=system:nodes/CN=system:node:n1`. */
  subject: string;
  usage: "serverAuth" | "clientAuth";
  /** subjectAltName entries, e.g. `DNS:localhost`, `IP:127.0.0.1`. */
  sans?: string[];
}

/** Paths of the certificate and key called `name` in the cluster directory `dir`. */
function keyPair(dir: string, name: string): KeyPair {
  return { cert: `${dir}/pki/${name}.crt`, key: `${dir}/pki/${name}.key` };
}

/** Where each credential of a cluster lives, under `<dir>/pki`. */
function pkiPaths(dir: string) {
  const pair = (name: string) => keyPair(dir, name);
  return {
    ca: pair("ca"),
    apiserver: pair("apiserver"),
    kubeletClient: pair("apiserver-kubelet-client"),
    admin: pair("admin"),
    controllerManager: pair("controller-manager"),
    scheduler: pair("scheduler"),
    frontProxyCA: pair("front-proxy-ca"),
    frontProxyClient: pair("front-proxy-client"),
    serviceAccount: { key: `${dir}/pki/sa.key`, pub: `${dir}/pki/sa.pub` },
  };
}

/** The credentials of one cluster. */
type Pki = ReturnType<typeof pkiPaths>;

/** Writes every credential the control plane needs. */
async function writePki(pki: Pki, bindAddress: string): Promise<void> {
  await Deno.mkdir(dirname(pki.ca.cert), { recursive: true });
  const caExtensions = [
    "basicConstraints = critical,CA:TRUE",
    "keyUsage = critical,keyCertSign,cRLSign,digitalSignature",
  ];
  await openssl(pki.ca, ["-subj", "/CN=systemk-test-ca"], caExtensions);
  // A CA of its own, as kubeadm's: a certificate the cluster CA signs must not pass as the
  // front proxy.
  await openssl(pki.frontProxyCA, ["-subj", "/CN=systemk-test-front-proxy-ca"], caExtensions);
  const ips = [...new Set(["127.0.0.1", KUBERNETES_SERVICE_IP, bindAddress])];
  const names = [
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
  ];
  const client = (pair: KeyPair, subject: string) =>
    issueCert(pki.ca, pair, { subject, usage: "clientAuth" });
  await Promise.all([
    issueCert(pki.ca, pki.apiserver, {
      subject: "/CN=kube-apiserver",
      usage: "serverAuth",
      sans: [...ips.map((ip) => `IP:${ip}`), ...names.map((name) => `DNS:${name}`)],
    }),
    // system:masters, so whatever a node agent asks the authorizer about the apiserver's
    // requests (logs, exec) is allowed, as with kubeadm's apiserver-kubelet-client.
    client(pki.kubeletClient, "/O=system:masters/CN=kube-apiserver-kubelet-client"),
    client(pki.admin, "/O=system:masters/CN=kubernetes-admin"),
    // The default RBAC policy already binds these user names to their component roles.
    client(pki.controllerManager, "/CN=system:kube-controller-manager"),
    client(pki.scheduler, "/CN=system:kube-scheduler"),
    issueCert(pki.frontProxyCA, pki.frontProxyClient, {
      subject: "/CN=front-proxy-client",
      usage: "clientAuth",
    }),
    (async () => {
      const { key, pub } = pki.serviceAccount;
      await exec("openssl", [
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        key,
      ]);
      await exec("openssl", ["pkey", "-in", key, "-pubout", "-out", pub]);
    })(),
  ]);
}

/** Issues a certificate signed by `ca`, with a fresh key, at the paths of `pair`. */
function issueCert(ca: KeyPair, pair: KeyPair, req: CertRequest): Promise<void> {
  const extensions = [
    "basicConstraints = critical,CA:FALSE",
    "keyUsage = critical,digitalSignature",
    `extendedKeyUsage = ${req.usage}`,
    "authorityKeyIdentifier = keyid",
  ];
  if (req.sans?.length) extensions.push(`subjectAltName = ${req.sans.join(",")}`);
  return openssl(pair, ["-subj", req.subject, "-CA", ca.cert, "-CAkey", ca.key], extensions);
}

/**
 * Makes a P-256 key and a certificate with exactly the given extensions (`openssl req -x509`,
 * self-signed unless `-CA` is among `args`). A config of our own keeps the distribution's
 * defaults, which mark every certificate as a CA, out of it.
 */
async function openssl(pair: KeyPair, args: string[], extensions: string[]): Promise<void> {
  const config = pair.cert.replace(/\.crt$/, ".cnf");
  const lines = [
    "[req]",
    "distinguished_name = dn",
    "x509_extensions = ext",
    "prompt = no",
    "[dn]",
  ];
  lines.push("[ext]", "subjectKeyIdentifier = hash", ...extensions, "");
  await Deno.writeTextFile(config, lines.join("\n"));
  await exec("openssl", [
    ...["req", "-x509", "-config", config, "-days", "30", "-nodes"],
    ...["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
    ...["-keyout", pair.key, "-out", pair.cert, ...args],
  ]);
}

/** Runs a command and throws, with its stderr, if it fails. */
async function exec(cmd: string, args: string[]): Promise<void> {
  const r = await run(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
}

/** Writes a self-contained kubeconfig (certificates embedded) for one client certificate. */
async function writeKubeconfig(path: string, server: string, caFile: string, user: KeyPair) {
  const data = async (file: string) => btoa(await Deno.readTextFile(file));
  const kubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{
      name: "test",
      cluster: { server, "certificate-authority-data": await data(caFile) },
    }],
    users: [{
      name: "user",
      user: {
        "client-certificate-data": await data(user.cert),
        "client-key-data": await data(user.key),
      },
    }],
    contexts: [{ name: "test", context: { cluster: "test", user: "user" } }],
    "current-context": "test",
  };
  // JSON is YAML, so kubectl and client-node both read it.
  await Deno.writeTextFile(path, JSON.stringify(kubeconfig, null, 2), { mode: 0o600 });
}

/** Random `[a-z0-9]{length}`, the alphabet of bootstrap token ids and secrets. */
function randomToken(length: number): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  let token = "";
  while (token.length < length) {
    for (const byte of crypto.getRandomValues(new Uint8Array(length))) {
      // Bytes from 252 up would favour the first letters; skip them.
      if (byte < 252 && token.length < length) token += alphabet[byte % alphabet.length];
    }
  }
  return token;
}

/**
 * The bootstrap token Secret plus the ClusterRoleBindings kubeadm creates for TLS bootstrapping:
 * bootstrappers may create CSRs, their node client CSRs are approved automatically, and nodes'
 * renewal CSRs for their own client certificate too.
 */
function bootstrapTokenManifest(id: string, secret: string, expiration: Date) {
  const binding = (name: string, clusterRole: string, group: string) => ({
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "ClusterRoleBinding",
    metadata: { name },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: clusterRole },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: group }],
  });
  return {
    apiVersion: "v1",
    kind: "List",
    items: [
      {
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: `bootstrap-token-${id}`, namespace: "kube-system" },
        type: "bootstrap.kubernetes.io/token",
        stringData: {
          "token-id": id,
          "token-secret": secret,
          expiration: expiration.toISOString().replace(/\.\d+Z$/, "Z"),
          "usage-bootstrap-authentication": "true",
          "usage-bootstrap-signing": "true",
          "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
        },
      },
      binding("kubeadm:kubelet-bootstrap", "system:node-bootstrapper", "system:bootstrappers"),
      binding(
        "kubeadm:node-autoapprove-bootstrap",
        "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
        "system:bootstrappers",
      ),
      binding(
        "kubeadm:node-autoapprove-certificate-rotation",
        "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
        "system:nodes",
      ),
    ],
  };
}
