import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  CertificateError,
  extendedKeyUsages,
  parseCertificateBundle,
  subjectUser,
  verifyClientCertificate,
} from "./x509.ts";

/** Makes a certificate with openssl: self-signed, or signed by `ca`; returns its PEM. */
async function makeCert(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
  ca?: string,
): Promise<string> {
  const args = [
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", `${dir}/${name}.key`, "-out", `${dir}/${name}.crt`, "-days", "2"],
    ...["-subj", subject],
    ...extensions.flatMap((e) => ["-addext", e]),
    ...(ca ? ["-CA", `${dir}/${ca}.crt`, "-CAkey", `${dir}/${ca}.key`] : []),
  ];
  const out = await new Deno.Command("openssl", { args, stderr: "piped" }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return await Deno.readTextFile(`${dir}/${name}.crt`);
}

Deno.test("client certificates: our CA's are accepted, others refused", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-x509-" });
  try {
    const caExt = ["basicConstraints=critical,CA:TRUE"];
    const caPem = await makeCert(dir, "ca", "/CN=cluster-ca", caExt);
    await makeCert(dir, "other", "/CN=other-ca", caExt);
    const client = ["extendedKeyUsage=clientAuth"];
    const alice = await makeCert(dir, "alice", "/O=dev/O=ops/CN=alice", client, "ca");
    const mallory = await makeCert(dir, "mallory", "/O=system:masters/CN=mallory", client, "other");
    const server = await makeCert(dir, "server", "/CN=srv", ["extendedKeyUsage=serverAuth"], "ca");
    const anyUse = await makeCert(dir, "any", "/CN=bob", [], "ca");
    const cas = parseCertificateBundle(caPem + (await Deno.readTextFile(`${dir}/other.crt`)));
    const ours = [cas[0]];
    const now = new Date();
    const x = (pem: string) => new X509Certificate(pem);

    await t.step("signed by the CA, for client auth: CN is the user, O the groups", () => {
      assert.deepEqual(verifyClientCertificate(x(alice), ours, now), {
        username: "alice",
        groups: ["dev", "ops"],
      });
      assert.equal(verifyClientCertificate(x(anyUse), ours, now).username, "bob");
    });

    await t.step("another CA's certificate is refused, whatever it claims", () => {
      assert.throws(
        () => verifyClientCertificate(x(mallory), ours, now),
        /not signed by a trusted CA/,
      );
      // With the other CA in the bundle it would pass: the bundle is what decides.
      assert.equal(verifyClientCertificate(x(mallory), cas, now).username, "mallory");
    });

    await t.step("a serving-only certificate is refused", () => {
      assert.deepEqual(extendedKeyUsages(new Uint8Array(x(server).raw)), ["1.3.6.1.5.5.7.3.1"]);
      assert.throws(() => verifyClientCertificate(x(server), ours, now), /client authentication/);
      assert.equal(extendedKeyUsages(new Uint8Array(x(anyUse).raw)), undefined);
    });

    await t.step("outside its validity period it is refused", () => {
      const later = new Date(now.getTime() + 3 * 86400_000);
      assert.throws(() => verifyClientCertificate(x(alice), ours, later), CertificateError);
      const earlier = new Date(now.getTime() - 86400_000);
      assert.throws(() => verifyClientCertificate(x(alice), ours, earlier), /not valid at/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("subjects: CN and every O", () => {
  assert.deepEqual(subjectUser("O=system:nodes\nCN=system:node:n1"), {
    username: "system:node:n1",
    groups: ["system:nodes"],
  });
  assert.throws(() => parseCertificateBundle("nothing"), /no PEM certificate/);
});
