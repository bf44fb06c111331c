/** Certificate requests and renewal (src/kube/certificates.ts, src/http/tls.ts) without a cluster. */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  certificateRequestPem,
  keepRenewed,
  newPrivateKey,
  opensslSubject,
  renewalTime,
} from "../../src/kube/certificates.ts";
import { selfSignedCertificate, servingRequest, splitPem } from "../../src/http/tls.ts";

async function opensslText(args: string[], stdin: string): Promise<string> {
  const child = new Deno.Command("openssl", { args, stdin: "piped", stdout: "piped" }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(stdin));
  await writer.close();
  return new TextDecoder().decode((await child.output()).stdout);
}

Deno.test("a node's serving certificate request: subject, names, key", async () => {
  const spec = servingRequest({
    nodeName: "n1",
    hostname: "host-1",
    addresses: ["10.0.0.2", "198.51.100.2", "10.0.0.2"],
  });
  assert.equal(spec.signerName, "kubernetes.io/kubelet-serving");
  assert.deepEqual(spec.usages, ["digital signature", "key encipherment", "server auth"]);
  const key = await newPrivateKey();
  const csr = await certificateRequestPem(key, spec);
  const text = await opensslText(["req", "-noout", "-text"], csr);
  assert.match(text, /Subject: O = system:nodes, CN = system:node:n1/);
  assert.match(text, /DNS:host-1, IP Address:10\.0\.0\.2, IP Address:198\.51\.100\.2\s*$/m);
  assert.match(text, /prime256v1|P-256/);
  assert.equal(opensslSubject("a/b", ["x\\y"]), "/O=x\\\\y/CN=a\\/b");
});

Deno.test("renewal at 80 % of the lifetime; a missing certificate is requested at once", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-renew-" });
  try {
    const issued = await selfSignedCertificate(dir, { hostname: "h", addresses: ["127.0.0.1"] });
    const cert = new X509Certificate(issued.cert);
    const from = Date.parse(cert.validFrom);
    const to = Date.parse(cert.validTo);
    assert.equal(renewalTime(issued.cert).getTime(), from + 0.8 * (to - from));

    const stop = new AbortController();
    const path = `${dir}/kubelet-server-current.pem`;
    let requests = 0;
    const renewed: string[] = [];
    const done = keepRenewed({
      path,
      what: "test certificate",
      request() {
        requests++;
        return Promise.resolve({ keyPem: issued.key, certPem: issued.cert });
      },
      onRenewed(c) {
        renewed.push(c.certPem);
      },
      signal: stop.signal,
    });
    // The one just written is good for a year: the loop now sleeps until 80 %, asking nothing.
    await new Promise((r) => setTimeout(r, 200));
    stop.abort();
    await done;
    assert.equal(requests, 1);
    assert.deepEqual(renewed, [issued.cert]);
    assert.deepEqual(splitPem(await Deno.readTextFile(path)), {
      cert: issued.cert,
      key: issued.key,
    });
    assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
