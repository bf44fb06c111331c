/**
 * `kubectl exec`, `attach` and `port-forward` end to end: the real kubectl talks to the real
 * apiserver, which speaks SPDY/3.1 to systemk's kubelet API (running in a booted systemd),
 * which runs the command inside the container or connects to the pod's port.
 */
import assert from "node:assert/strict";
import type { V1Pod } from "@kubernetes/client-node";
import { type NodeEnv, startNodeEnv, waitFor } from "./_node_env.ts";
import { freePorts } from "../harness/cluster.ts";
import { approveServingCertificate, clientCert, kubeletAPIFlags, run } from "./_kubelet_api.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };

/** Runs the real kubectl as the admin: exit code, stdout, stderr. */
async function kubectl(env: NodeEnv, args: string[], stdin?: Uint8Array | string) {
  const child = new Deno.Command(env.cluster.kubectlPath, {
    args: [`--kubeconfig=${env.cluster.adminKubeconfig}`, ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
    await writer.close();
  }
  const out = await child.output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("kubectl exec, attach and port-forward through the apiserver", opts, async (t) => {
  const [port] = freePorts("127.0.0.1", 1);
  const env = await startNodeEnv({ nodeName: "n1", flags: kubeletAPIFlags(port) });
  const log = async () => `--- systemk log ---\n${await env.agentLog()}`;
  const running = (name: string) =>
    waitFor(
      `pod ${name} running`,
      async () => {
        const p = await env.getJSON<V1Pod>(["pod", name]);
        return p?.status?.containerStatuses?.[0]?.state?.running ? p : undefined;
      },
      60_000,
      log,
    );
  try {
    await t.step("setup: a serving certificate, a shell pod and an HTTP server pod", async () => {
      await approveServingCertificate(env.cluster, "n1", log);
      const webPort = freePorts("127.0.0.1", 1)[0];
      await env.apply(
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "shell", namespace: "default" },
          spec: {
            nodeName: "n1",
            containers: [{
              name: "c",
              image: "/bin/sh",
              env: [{ name: "GREETING", value: "hello from the container" }],
              command: ["/bin/sh", "-c", "while true; do echo tick; sleep 1; done"],
            }],
          },
        },
        {
          apiVersion: "v1",
          kind: "Pod",
          metadata: { name: "web", namespace: "default", annotations: { port: `${webPort}` } },
          spec: {
            nodeName: "n1",
            containers: [{
              name: "c",
              image: "/usr/bin/python3",
              command: [
                "/bin/sh",
                "-c",
                // The page lives in the container's private /tmp: served from inside it.
                `cd /tmp && echo "page of pod web" > index.html && ` +
                `exec /usr/bin/python3 -m http.server ${webPort} --bind 127.0.0.1`,
              ],
            }],
          },
        },
      );
      await running("shell");
      await running("web");
      // The apiserver only reaches the kubelet API once it serves the CSR-signed certificate.
      await waitFor(
        "kubectl exec to work",
        async () => (await kubectl(env, ["exec", "shell", "--", "true"])).code === 0,
        60_000,
        log,
      );
    });

    await t.step("kubectl exec: output, the container's env, exit codes", async () => {
      const start = Date.now();
      const echo = await kubectl(env, ["exec", "shell", "--", "sh", "-c", 'echo "$GREETING"']);
      console.log(`kubectl exec echo took ${Date.now() - start} ms`);
      assert.equal(echo.code, 0, echo.stderr);
      assert.equal(echo.stdout, "hello from the container\n");
      const failing = await kubectl(env, [
        ...["exec", "shell", "--", "sh", "-c"],
        "echo to stdout; echo to stderr >&2; exit 3",
      ]);
      assert.equal(failing.code, 3, failing.stderr);
      assert.equal(failing.stdout, "to stdout\n");
      assert.match(failing.stderr, /^to stderr$/m);
      const missing = await kubectl(env, ["exec", "shell", "--", "/no/such/command"]);
      assert.notEqual(missing.code, 0);
      assert.equal(missing.stdout, "");
    });

    await t.step("kubectl exec -i: stdin, more than a flow-control window of it", async () => {
      const cat = await kubectl(env, ["exec", "-i", "shell", "--", "cat"], "line 1\nline 2\n");
      assert.equal(cat.code, 0, cat.stderr);
      assert.equal(cat.stdout, "line 1\nline 2\n");
      // 1 MiB each way: far beyond SPDY's 64 KiB initial window.
      const big = new Uint8Array(1 << 20).map((_, i) => 97 + (i % 26));
      const start = Date.now();
      const echoed = await kubectl(env, ["exec", "-i", "shell", "--", "cat"], big);
      console.log(`1 MiB through kubectl exec -i cat took ${Date.now() - start} ms`);
      assert.equal(echoed.code, 0, echoed.stderr);
      assert.equal(echoed.stdout.length, big.length);
      assert.equal(echoed.stdout, new TextDecoder().decode(big));
    });

    await t.step(
      "kubectl cp: a file into the container's private /tmp and back (tar over exec)",
      async () => {
        const dir = await Deno.makeTempDir({ dir: env.cluster.dir });
        const content = "copied through kubectl cp\n".repeat(5000);
        await Deno.writeTextFile(`${dir}/up.txt`, content);
        const up = await kubectl(env, ["cp", `${dir}/up.txt`, "shell:/tmp/up.txt"]);
        assert.equal(up.code, 0, up.stderr);
        const inside = await kubectl(env, ["exec", "shell", "--", "wc", "-c", "/tmp/up.txt"]);
        assert.equal(inside.stdout, `${content.length} /tmp/up.txt\n`);
        const down = await kubectl(env, ["cp", "shell:/tmp/up.txt", `${dir}/down.txt`]);
        assert.equal(down.code, 0, down.stderr);
        assert.equal(await Deno.readTextFile(`${dir}/down.txt`), content);
        // The container's /tmp is its own: the host's has no such file.
        await assert.rejects(Deno.stat("/tmp/up.txt"));
      },
    );

    await t.step("kubectl exec -it: a terminal of the client's size", async () => {
      // kubectl only asks for a TTY when its own stdin is one: script(1) gives it a terminal,
      // sized with stty before kubectl reads the size.
      const r = await run("script", [
        ...["-q", "-e", "-c"],
        `stty rows 33 cols 101; ${env.cluster.kubectlPath} ` +
        `--kubeconfig=${env.cluster.adminKubeconfig} exec -it shell -- sh -c 'tty; stty size; exit 4'`,
        "/dev/null",
      ]);
      assert.equal(r.code, 4, r.out);
      assert.match(r.out, /\/dev\/pts\/\d+/);
      assert.match(r.out, /33 101/);
    });

    await t.step(
      "kubectl exec -it: the client's terminal resized, the container's follows",
      async () => {
        // script(1) writes its terminal's name where the test can resize it from outside; the
        // kernel then sends SIGWINCH to kubectl, which sends the new size on the resize stream.
        const ttyFile = `${env.cluster.dir}/streaming-client-tty`;
        const child = new Deno.Command("script", {
          args: [
            ...["-q", "-e", "-c"],
            `tty > ${ttyFile}; stty rows 33 cols 101; ${env.cluster.kubectlPath} ` +
            `--kubeconfig=${env.cluster.adminKubeconfig} exec -it shell -- sh -c ` +
            `'stty size; while [ "$(stty size)" = "33 101" ]; do sleep 0.1; done; stty size'`,
            "/dev/null",
          ],
          // Open until the end: script passes its input on to the terminal.
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        const see = async (pattern: RegExp) => {
          while (!pattern.test(out)) {
            const r = await reader.read();
            if (r.done) throw new Error(`output ended before ${pattern}: ${out}`);
            out += r.value;
          }
        };
        try {
          await see(/33 101/);
          const tty = (await Deno.readTextFile(ttyFile)).trim();
          const resized = await run("stty", ["-F", tty, "rows", "50", "cols", "120"]);
          assert.equal(resized.code, 0, resized.out);
          await see(/50 120/);
          assert.equal((await child.status).code, 0, out);
        } finally {
          await reader.cancel().catch(() => {});
          await child.stdin.close().catch(() => {});
          await child.stderr.cancel().catch(() => {});
          try {
            child.kill();
          } catch {
            // already ended
          }
          await child.status;
        }
      },
    );

    await t.step("kubectl attach: the container's output; stdin refused clearly", async () => {
      const refused = await kubectl(env, ["attach", "-i", "shell"], "x\n");
      assert.notEqual(refused.code, 0);
      assert.match(refused.stderr, /no standard input to attach to/);
      // Attached, the container's new output arrives: it says "tick" every second.
      const child = new Deno.Command(env.cluster.kubectlPath, {
        args: [`--kubeconfig=${env.cluster.adminKubeconfig}`, "attach", "shell"],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let seen = "";
      while (seen.split("\n").length <= 2) seen += (await reader.read()).value ?? "";
      assert.match(seen, /^tick\ntick\n/);
      child.kill("SIGTERM");
      await child.status;
      await reader.cancel().catch(() => {});
    });

    await t.step("kubectl port-forward: HTTP to a server in the pod", async () => {
      const web = (await env.getJSON<V1Pod>(["pod", "web"]))!;
      const remote = web.metadata!.annotations!.port;
      const local = freePorts("127.0.0.1", 1)[0];
      const child = new Deno.Command(env.cluster.kubectlPath, {
        args: [
          `--kubeconfig=${env.cluster.adminKubeconfig}`,
          ...["port-forward", "pod/web", `${local}:${remote}`],
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stderr = new Response(child.stderr).text();
      try {
        const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
        let out = "";
        while (!out.includes("Forwarding from")) {
          const r = await reader.read();
          if (r.done) break;
          out += r.value;
        }
        reader.releaseLock();
        assert.match(out, /Forwarding from 127\.0\.0\.1/);
        // Several connections, one after the other and at once: a stream pair each.
        for (let i = 0; i < 3; i++) {
          const page = await fetch(`http://127.0.0.1:${local}/index.html`).catch(async (e) => {
            throw new Error(`${e.message}: ${e.cause}\n${await log()}`);
          });
          assert.equal(page.status, 200);
          assert.equal(await page.text(), "page of pod web\n");
        }
        const pages = await Promise.all(
          [1, 2, 3, 4].map(() => fetch(`http://127.0.0.1:${local}/`).then((r) => r.text())),
        );
        assert.deepEqual(pages, Array(4).fill("page of pod web\n"));
      } finally {
        child.kill("SIGTERM");
        await child.status;
        console.log(`kubectl port-forward stderr: ${await stderr}`);
      }
      // A port nobody listens on: the error comes back, kubectl says so.
      const closed = freePorts("127.0.0.1", 1)[0];
      const child2 = new Deno.Command(env.cluster.kubectlPath, {
        args: [
          `--kubeconfig=${env.cluster.adminKubeconfig}`,
          ...["port-forward", "pod/web", `${local}:${closed}`],
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const out2 = child2.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let forwarding = "";
      while (!forwarding.includes("Forwarding from")) {
        const r = await out2.read();
        if (r.done) break;
        forwarding += r.value;
      }
      out2.releaseLock();
      await fetch(`http://127.0.0.1:${local}/`).then((r) => r.body?.cancel()).catch(() => {});
      const status = await Promise.race([
        child2.status,
        new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000)),
      ]);
      if (!status) child2.kill("SIGTERM");
      const errors = await new Response(child2.stderr).text();
      await child2.status;
      await child2.stdout.cancel().catch(() => {});
      assert.match(errors, new RegExp(`error forwarding port ${closed}.*connection refused`, "i"));
    });

    await t.step(
      "the apiserver spoke SPDY to systemk: every streaming request switched",
      async () => {
        const pki = `${env.cluster.dir}/pki`;
        const metrics = await run("curl", [
          ...["-sS", "--cacert", env.cluster.caFile, "--cert", `${pki}/admin.crt`],
          ...["--key", `${pki}/admin.key`, `https://127.0.0.1:${port}/metrics`],
        ]);
        const answers = metrics.out.split("\n").filter((l) =>
          /^systemk_kubelet_api_requests_total\{.*path="\/(exec|attach|portForward)"/.test(l)
        );
        // kubectl spoke WebSocket to the apiserver (v5.channel.k8s.io, and SPDY/3.1 tunnelled in
        // it for port-forward); toward systemk every request was a SPDY/3.1 upgrade (101), none
        // refused (400) and retried another way.
        assert.ok(answers.length >= 3, metrics.out);
        for (const line of answers) assert.match(line, /code="101"/);
      },
    );

    await t.step("only users allowed nodes/proxy may stream", async () => {
      const certs = `${env.cluster.dir}/streaming-test`;
      await Deno.mkdir(certs, { recursive: true });
      const nobody = await clientCert(certs, "nobody", "/CN=nobody", `${env.cluster.dir}/pki/ca`);
      const r = await run("curl", [
        ...["-sS", "--cacert", env.cluster.caFile, "--cert", nobody.cert, "--key", nobody.key],
        ...["-X", "POST", "-H", "Connection: Upgrade", "-H", "Upgrade: SPDY/3.1"],
        ...["-H", "X-Stream-Protocol-Version: v4.channel.k8s.io", "-w", "\n%{http_code}"],
        `https://127.0.0.1:${port}/exec/default/shell/c?command=true&output=1`,
      ]);
      assert.match(
        r.out,
        /Forbidden \(user=nobody, verb=create, resource=nodes, subresource=proxy\)/,
      );
      assert.match(r.out, /\n403$/);
    });
  } finally {
    await env.stop();
  }
});
