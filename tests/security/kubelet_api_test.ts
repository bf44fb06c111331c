/**
 * Attacks on a node's kubelet API, made the way an attacker makes them, against a real control
 * plane (kube-apiserver, controller-manager with its CSR approver and signer), a booted
 * systemd 252 and systemk running in it:
 *
 * - a **bootstrap-token holder** asks for a node client certificate whose CN smuggles a group
 *   (`system:node:evil\nO=system:masters`) through the real certificates API; the real
 *   controller-manager approves and signs it; curl presents it to systemk's kubelet API;
 * - someone holding only an **X.509 v1 certificate** of the client CA (public, unlike its key)
 *   presents it with a key of their own, with a real TLS client (Go's crypto/tls);
 * - a user allowed **`pods/exec` on a pod of their own** sends SPDY header bombs through the
 *   apiserver's exec endpoint (100 KB inflating to 100 MB; a 16 MiB control frame).
 *
 * Each must get nothing: no admin rights, no memory, no stop of the agent. Each step fails on
 * code without its defence (identity from the DER subject with control characters refused;
 * v3 only; bounded header inflation).
 *
 * @module
 */
import assert from "node:assert/strict";
import tls from "node:tls";
import zlib from "node:zlib";
import type { V1CertificateSigningRequest, V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitFor } from "../e2e/_node_env.ts";
import {
  approveServingCertificate,
  clientCert,
  kubeletAPIFlags,
  run,
} from "../e2e/_kubelet_api.ts";
import { freePorts } from "../harness/cluster.ts";
import { TestClient } from "../harness/spdy_client.ts";
import { SPDY3_DICTIONARY } from "../../src/http/spdy/compression.ts";
import { encodeFrame, type Frame } from "../../src/http/spdy/frames.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const FORGED_CLIENT = new URL("./forged_tls_client/main.go", import.meta.url).pathname;

/** Builds the Go TLS client that presents a certificate with any key (see its doc). */
async function buildForgedClient(dir: string): Promise<string> {
  const go = Deno.env.get("GO") ??
    (await Deno.stat("/usr/local/go/bin/go").then(() => "/usr/local/go/bin/go", () => "go"));
  const out = `${dir}/forged_tls_client`;
  const r = await run(go, ["build", "-o", out, FORGED_CLIENT]);
  assert.equal(r.code, 0, r.out);
  return out;
}

/** The peak resident memory of systemk's process so far (VmHWM), in bytes. */
async function agentPeakMemory(env: NodeEnv): Promise<number> {
  const pid = await env.unitProperty("systemk-agent", "MainPID");
  const status = await env.system.exec(["cat", `/proc/${pid}/status`]);
  const kib = status.stdout.match(/^VmHWM:\s+(\d+) kB$/m)?.[1];
  assert.ok(kib, status.stdout + status.stderr);
  return Number(kib) * 1024;
}

/**
 * Opens `kubectl exec`'s connection by hand: TLS to the apiserver with a bearer token, the
 * SPDY/3.1 upgrade of pods/exec, and from the 101 on a SPDY client on the tunnel the apiserver
 * opens to the node's kubelet API.
 */
async function execTunnel(
  env: NodeEnv,
  token: string,
  pod: { namespace: string; name: string },
): Promise<TestClient> {
  const server = new URL(env.cluster.server);
  const socket = tls.connect({
    host: server.hostname,
    port: Number(server.port),
    ca: await Deno.readTextFile(env.cluster.caFile),
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", resolve);
    socket.once("error", reject);
  });
  const path = `/api/v1/namespaces/${pod.namespace}/pods/${pod.name}/exec` +
    "?command=sh&stdin=true&stdout=true";
  socket.write(
    [
      `POST ${path} HTTP/1.1`,
      `Host: ${server.host}`,
      `Authorization: Bearer ${token}`,
      "Connection: Upgrade",
      "Upgrade: SPDY/3.1",
      "X-Stream-Protocol-Version: v4.channel.k8s.io",
      "Content-Length: 0",
      "",
      "",
    ].join("\r\n"),
  );
  // The answer's head, up to the blank line; nothing follows it until the client speaks SPDY.
  let head = "";
  await new Promise<void>((resolve, reject) => {
    const take = (chunk: Uint8Array) => {
      head += new TextDecoder().decode(chunk);
      if (!head.includes("\r\n\r\n")) return;
      socket.off("data", take);
      socket.pause();
      resolve();
    };
    socket.on("data", take);
    socket.once("error", reject);
  });
  assert.match(head, /^HTTP\/1\.1 101 /, head);
  assert.ok(head.endsWith("\r\n\r\n"), "no SPDY bytes before the client's first frame");
  const client = new TestClient(socket);
  socket.resume();
  return client;
}

/** A name/value block of one header `x` whose value is `length` bytes `a`. */
function longHeaderBlock(length: number): Uint8Array {
  const block = new Uint8Array(13 + length).fill(0x61);
  const view = new DataView(block.buffer);
  view.setUint32(0, 1);
  view.setUint32(4, 1);
  block[8] = 0x78; // "x"
  view.setUint32(9, length);
  return block;
}

Deno.test(
  "attacks on the kubelet API: smuggled groups, v1 certificates, SPDY bombs",
  opts,
  async (t) => {
    const [port] = freePorts("127.0.0.1", 1);
    const env = await startNodeEnv({ nodeName: "n1", flags: kubeletAPIFlags(port) });
    const log = async () => `--- systemk log ---\n${await env.agentLog()}`;
    const dir = `${env.cluster.dir}/kubelet-api-attacks`;
    await Deno.mkdir(dir, { recursive: true });
    const pki = `${env.cluster.dir}/pki`;
    /** curl at the kubelet API (its certificate not checked): HTTP status and body. */
    const curl = async (path: string, cert: { cert: string; key: string }, method = "GET") => {
      const r = await run("curl", [
        ...["-sS", "-k", "--cert", cert.cert, "--key", cert.key, "-X", method],
        ...["-w", "\n%{http_code}", `https://127.0.0.1:${port}${path}`],
      ]);
      const lines = r.out.trimEnd().split("\n");
      return { status: Number(lines.pop()), body: lines.join("\n") };
    };
    const running = (namespace: string, name: string) =>
      waitFor(
        `pod ${namespace}/${name} running`,
        async () => {
          const p = await env.getJSON<V1Pod>(["pod", "-n", namespace, name]);
          return p?.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
        },
        60_000,
        log,
      );
    const loop = (namespace: string, name: string) => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, namespace },
      spec: {
        nodeName: "n1",
        containers: [{
          name: "c",
          image: "/bin/sh",
          command: ["/bin/sh", "-c", "while :; do sleep 1; done"],
        }],
      },
    });
    let tenantToken = "";
    try {
      await t.step(
        "setup: a victim pod, and a tenant allowed pods/exec in its own namespace",
        async () => {
          await approveServingCertificate(env.cluster, "n1", log);
          await env.kubectl(["create", "namespace", "tenant"]);
          await env.apply(loop("default", "victim"), loop("tenant", "mine"), {
            apiVersion: "v1",
            kind: "ServiceAccount",
            metadata: { name: "dev", namespace: "tenant" },
          }, {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "Role",
            metadata: { name: "exec", namespace: "tenant" },
            rules: [
              { apiGroups: [""], resources: ["pods"], verbs: ["get"] },
              { apiGroups: [""], resources: ["pods/exec"], verbs: ["get", "create"] },
            ],
          }, {
            apiVersion: "rbac.authorization.k8s.io/v1",
            kind: "RoleBinding",
            metadata: { name: "dev-exec", namespace: "tenant" },
            roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "exec" },
            subjects: [{ kind: "ServiceAccount", name: "dev", namespace: "tenant" }],
          });
          await running("default", "victim");
          await running("tenant", "mine");
          tenantToken = (await env.kubectl(["create", "token", "dev", "-n", "tenant"])).trim();
        },
      );

      await t.step(
        "a bootstrap token's node CSR smuggling O=system:masters in its CN gets no rights",
        async () => {
          const token = await env.cluster.createBootstrapToken();
          const asToken = (args: string[], stdin?: string) =>
            env.cluster.kubectl([
              ...["--server", env.cluster.server, "--certificate-authority", env.cluster.caFile],
              ...["--token", token, ...args],
            ], { kubeconfig: "/dev/null", stdin });
          // What the kubelet's TLS bootstrap sends, but for a CN with a line break in it (a
          // UTF8String may hold one): O=system:nodes and the CN prefix are all the approver checks.
          const key = `${dir}/evil.key`;
          const r = await run("openssl", [
            ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
            ...["-nodes", "-keyout", key, "-out", `${dir}/evil.csr`, "-utf8"],
            ...["-subj", "/O=system:nodes/CN=system:node:evil\nO=system:masters"],
          ]);
          assert.equal(r.code, 0, r.out);
          const created = await asToken(
            ["create", "-f", "-"],
            JSON.stringify({
              apiVersion: "certificates.k8s.io/v1",
              kind: "CertificateSigningRequest",
              metadata: { name: "node-csr-evil" },
              spec: {
                request: btoa(await Deno.readTextFile(`${dir}/evil.csr`)),
                signerName: "kubernetes.io/kube-apiserver-client-kubelet",
                usages: ["digital signature", "client auth"],
              },
            }),
          );
          assert.equal(created.code, 0, created.stderr);
          // No admin approves anything here: the controller-manager's csrapproving controller
          // approves it for the token's group, and its signer signs it with the cluster CA.
          const csr = await waitFor(
            "the smuggling CSR approved and signed",
            async () => {
              const c = await env.getJSON<V1CertificateSigningRequest>(["csr", "node-csr-evil"]);
              return c?.status?.certificate ? c : undefined;
            },
            60_000,
            log,
          );
          const approved = csr.status?.conditions?.find((c) => c.type === "Approved");
          assert.equal(approved?.reason, "AutoApproved", JSON.stringify(csr.status?.conditions));
          const cert = { cert: `${dir}/evil.crt`, key };
          await Deno.writeTextFile(cert.cert, atob(csr.status!.certificate!));
          const subject = await run("openssl", ["x509", "-noout", "-subject", "-in", cert.cert]);
          assert.match(subject.out, /CN = system:node:evil\\0AO=system:masters/);
          // The apiserver reads the subject's DER: one CN holding a line break, group system:nodes.
          const whoami = await env.cluster.kubectl([
            ...["--server", env.cluster.server, "--certificate-authority", env.cluster.caFile],
            ...["--client-certificate", cert.cert, "--client-key", key],
            ...["auth", "whoami", "-o", "json"],
          ], { kubeconfig: "/dev/null" });
          assert.equal(whoami.code, 0, whoami.stderr);
          const user = JSON.parse(whoami.stdout).status.userInfo;
          assert.equal(user.username, "system:node:evil\nO=system:masters");
          assert.ok(!user.groups.includes("system:masters"), user.groups.join());

          // At the kubelet API: not an admin, not even a user: a name with a control character
          // in it is refused outright.
          const pods = await curl("/pods", cert);
          assert.equal(pods.status, 401, `GET /pods: ${pods.status} ${pods.body.slice(0, 200)}`);
          const exec = await curl("/run/default/victim/c?cmd=id", cert, "POST");
          assert.equal(
            exec.status,
            401,
            `POST /run into another's pod: ${exec.status} ${exec.body}`,
          );
          assert.match(
            await env.agentLog(),
            /client certificate refused: certificate O="system:nodes", CN="system:node:evil\\nO=system:masters": a control character/,
          );
        },
      );

      await t.step(
        "a v1 certificate of the client CA, presented with another key, is no bearer token",
        async () => {
          // An admin certificate made as the README's quickstart used to make them
          // (`openssl x509 -req` without extensions: X.509 v1). Its key stays with its owner;
          // the attacker has the certificate (public) and a key of their own.
          const v1 = { cert: `${dir}/v1-admin.crt`, key: `${dir}/v1-admin.key` };
          for (
            const args of [
              [
                ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"],
                ...["-nodes", "-keyout", v1.key, "-out", `${dir}/v1-admin.csr`],
                ...["-subj", "/O=system:masters/CN=v1-admin"],
              ],
              [
                ...["x509", "-req", "-in", `${dir}/v1-admin.csr`, "-CA", `${pki}/ca.crt`],
                ...["-CAkey", `${pki}/ca.key`, "-CAcreateserial", "-days", "1", "-out", v1.cert],
              ],
              [
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                `${dir}/mine.key`,
              ],
            ]
          ) {
            const r = await run("openssl", args);
            assert.equal(r.code, 0, r.out);
          }
          const text = await run("openssl", ["x509", "-noout", "-text", "-in", v1.cert]);
          assert.match(text.out, /Version: 1 \(0x0\)/);
          const forged = await buildForgedClient(dir);
          const present = async (cert: string, key: string, path: string) =>
            (await run(forged, [`127.0.0.1:${port}`, cert, key, "GET", path])).out;

          const stolen = await present(v1.cert, `${dir}/mine.key`, "/pods");
          assert.match(stolen, /^HTTP\/1\.1 401 /, `v1 certificate, another key:\n${stolen}`);
          // Not with its own key either: v1 is refused, whoever holds it.
          assert.match(await present(v1.cert, v1.key, "/pods"), /^HTTP\/1\.1 401 /);
          // A v3 certificate with another key fails in TLS itself (Deno checks the signature).
          const v3 = await present(`${pki}/admin.crt`, `${dir}/mine.key`, "/pods");
          assert.doesNotMatch(v3, /HTTP\/1\.1/, `v3 admin certificate, another key:\n${v3}`);
          // And the same client with a v3 certificate and its own key is served: the refusals
          // above are the certificates', not the client's.
          const own = await clientCert(dir, "proxy", "/O=system:masters/CN=v3-admin", `${pki}/ca`);
          assert.match(await present(own.cert, own.key, "/pods"), /^HTTP\/1\.1 200 /);
          assert.match(
            await env.agentLog(),
            /CN="v1-admin": an X\.509 v1 certificate; only v3 client certificates are accepted/,
          );
        },
      );

      await t.step(
        "SPDY header bombs through the apiserver's exec: reset, bounded memory, still serving",
        async () => {
          const pod = { namespace: "tenant", name: "mine" };
          const goAwayOf = (client: TestClient) =>
            waitFor(
              "a GOAWAY from systemk",
              () => client.frames.find((f) => f.type === "goAway"),
              60_000,
              log,
            );
          const agentPid = await env.unitProperty("systemk-agent", "MainPID");
          const before = await agentPeakMemory(env);

          // 100 MB of header value deflated to about 100 KB, in the SYN_STREAM of an exec.
          const bomb = await execTunnel(env, tenantToken, pod);
          try {
            await bomb.open(1, longHeaderBlock(100_000_000));
            const answer = await goAwayOf(bomb);
            // Memory first: what the bomb cost shows whatever the answer was.
            const grown = (await agentPeakMemory(env)) - before;
            assert.ok(grown < 64 << 20, `systemk's peak memory grew by ${grown >> 20} MiB`);
            assert.deepEqual(answer, { type: "goAway", lastGoodStreamId: 0, status: 1 });
            await waitFor("the bombed connection closed", () => bomb.ended, 30_000, log);
          } finally {
            bomb.close();
          }

          // One 16 MiB SYN_STREAM: its header and the first 64 KiB of a deflate stream of zeros
          // are enough to be refused; the rest is never sent.
          const big = await execTunnel(env, tenantToken, pod);
          try {
            const zeros = zlib.deflateSync(new Uint8Array(64 << 20), {
              dictionary: SPDY3_DICTIONARY,
              level: 9,
              finishFlush: zlib.constants.Z_SYNC_FLUSH,
            });
            const frame: Frame = {
              type: "synStream",
              streamId: 1,
              associatedTo: 0,
              priority: 0,
              fin: false,
              unidirectional: false,
              headerBlock: zeros,
            };
            const bytes = encodeFrame(frame);
            // The length field says 16 MiB - 1 whatever was deflated: the attacker's frame.
            bytes.set([0xff, 0xff, 0xff], 5);
            big.sendBytes(bytes.subarray(0, 8 + 65536));
            assert.deepEqual(await goAwayOf(big), {
              type: "goAway",
              lastGoodStreamId: 0,
              status: 1,
            });
          } finally {
            big.close();
          }

          const grown = (await agentPeakMemory(env)) - before;
          assert.ok(grown < 64 << 20, `systemk's peak memory grew by ${grown >> 20} MiB`);
          const agentLog = await env.agentLog();
          assert.match(agentLog, /inflates to more than 262144 bytes/);
          assert.match(agentLog, /control frame of 16777215 bytes; at most \d+ are accepted/);
          // The same agent serves the tenant's next exec as before.
          assert.equal(await env.unitProperty("systemk-agent", "MainPID"), agentPid);
          const exec = await env.cluster.kubectl([
            ...["--server", env.cluster.server, "--certificate-authority", env.cluster.caFile],
            ...["--token", tenantToken, "-n", "tenant", "exec", "mine", "--"],
            ...["echo", "still serving"],
          ], { kubeconfig: "/dev/null" });
          assert.equal(exec.stdout, "still serving\n", exec.stderr);
        },
      );
    } finally {
      await env.stop();
    }
  },
);
