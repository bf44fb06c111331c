import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import {
  CertificateError,
  certificateFields,
  extendedKeyUsages,
  parseCertificateBundle,
  verifyClientCertificate,
} from "./x509.ts";

async function openssl(args: string[]): Promise<void> {
  const out = await new Deno.Command("openssl", { args, stderr: "piped" }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
}

/** Makes a certificate with openssl: self-signed, or signed by `ca`; returns its PEM. */
async function makeCert(
  dir: string,
  name: string,
  subject: string,
  extensions: string[],
  ca?: string,
): Promise<string> {
  await openssl([
    ...["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", `${dir}/${name}.key`, "-out", `${dir}/${name}.crt`, "-days", "2"],
    ...["-subj", subject, "-multivalue-rdn", "-utf8"],
    ...extensions.flatMap((e) => ["-addext", e]),
    ...(ca ? ["-CA", `${dir}/${ca}.crt`, "-CAkey", `${dir}/${ca}.key`] : []),
  ]);
  return await Deno.readTextFile(`${dir}/${name}.crt`);
}

/**
 * Makes a certificate as the README's quickstart once did: a request signed with
 * `openssl x509 -req`, which without extensions makes an X.509 v1 certificate.
 */
async function makeV1Cert(dir: string, name: string, subject: string, ca: string) {
  await openssl([
    ...["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"],
    ...["-keyout", `${dir}/${name}.key`, "-out", `${dir}/${name}.csr`, "-subj", subject],
  ]);
  await openssl([
    ...["x509", "-req", "-in", `${dir}/${name}.csr`, "-CA", `${dir}/${ca}.crt`],
    ...["-CAkey", `${dir}/${ca}.key`, "-CAcreateserial", "-days", "1"],
    ...["-out", `${dir}/${name}.crt`],
  ]);
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
    // Certificates made in later steps are valid from the second they were made: those steps
    // check at the time of the check.
    const now = new Date();
    const x = (pem: string) => new X509Certificate(pem);
    const ourCA = (currentTime: Date) => ({ roots: ours, currentTime });

    await t.step("signed by the CA, for client auth: CN is the user, O the groups", () => {
      assert.deepEqual(verifyClientCertificate(x(alice), ourCA(now)), {
        username: "alice",
        groups: ["dev", "ops"],
      });
      assert.equal(verifyClientCertificate(x(anyUse), ourCA(now)).username, "bob");
    });

    await t.step("another CA's certificate is refused, whatever it claims", () => {
      assert.throws(
        () => verifyClientCertificate(x(mallory), ourCA(now)),
        /not signed by a trusted CA/,
      );
      // With the other CA in the bundle it would pass: the bundle is what decides.
      assert.equal(
        verifyClientCertificate(x(mallory), { roots: cas, currentTime: now }).username,
        "mallory",
      );
    });

    await t.step("a serving-only certificate is refused", () => {
      assert.deepEqual(extendedKeyUsages(new Uint8Array(x(server).raw)), ["1.3.6.1.5.5.7.3.1"]);
      assert.throws(() => verifyClientCertificate(x(server), ourCA(now)), /client authentication/);
      assert.equal(extendedKeyUsages(new Uint8Array(x(anyUse).raw)), undefined);
    });

    await t.step("outside its validity period it is refused", () => {
      const later = new Date(now.getTime() + 3 * 86400_000);
      assert.throws(() => verifyClientCertificate(x(alice), ourCA(later)), CertificateError);
      const earlier = new Date(now.getTime() - 86400_000);
      assert.throws(() => verifyClientCertificate(x(alice), ourCA(earlier)), /not valid at/);
    });

    await t.step("an X.509 v1 certificate is refused, even from the trusted CA", async () => {
      const v1 = x(await makeV1Cert(dir, "v1", "/O=system:masters/CN=admin", "ca"));
      assert.equal(certificateFields(new Uint8Array(v1.raw)).version, 1);
      assert.ok(v1.checkIssued(cas[0]) && v1.verify(cas[0].publicKey), "the CA did sign it");
      assert.throws(
        () => verifyClientCertificate(v1, ourCA(new Date())),
        /an X\.509 v1 certificate; only v3 client certificates are accepted/,
      );
      assert.equal(certificateFields(new Uint8Array(x(alice).raw)).version, 3);
    });

    await t.step("a CA that is not for client authentication signs no client", async () => {
      await makeCert(dir, "srvca", "/CN=serving-ca", [...caExt, "extendedKeyUsage=serverAuth"]);
      const carol = await makeCert(dir, "carol", "/CN=carol", client, "srvca");
      const srvca = parseCertificateBundle(await Deno.readTextFile(`${dir}/srvca.crt`));
      assert.throws(
        () => verifyClientCertificate(x(carol), { roots: srvca, currentTime: new Date() }),
        /CN="carol": its CA: not for client authentication/,
      );
    });

    await t.step("subjects: CN and O from the DER, smuggled lines refused", async () => {
      // A newline in the CN: Node's text form of this subject reads as a third line O=...
      const smuggler = x(
        await makeCert(dir, "smuggler", "/O=system:nodes/CN=system:node:x\nO=system:masters", [
          ...client,
        ], "ca"),
      );
      assert.equal(smuggler.subject, "O=system:nodes\nCN=system:node:x\nO=system:masters");
      assert.deepEqual(certificateFields(new Uint8Array(smuggler.raw)), {
        version: 3,
        commonNames: ["system:node:x\nO=system:masters"],
        organizations: ["system:nodes"],
        extendedKeyUsages: ["1.3.6.1.5.5.7.3.2"],
      });
      assert.throws(
        () => verifyClientCertificate(smuggler, ourCA(new Date())),
        /certificate O="system:nodes", CN="system:node:x\\nO=system:masters": a control character/,
      );
      const inO = await makeCert(dir, "ino", "/O=a\tb/CN=eve", client, "ca");
      assert.throws(
        () => verifyClientCertificate(x(inO), ourCA(new Date())),
        /a control character/,
      );
      const twoCNs = await makeCert(dir, "two", "/CN=eve/CN=system:admin", client, "ca");
      assert.throws(
        () => verifyClientCertificate(x(twoCNs), ourCA(new Date())),
        /more than one common name/,
      );
      const noCN = await makeCert(dir, "nocn", "/O=system:masters", client, "ca");
      assert.throws(() => verifyClientCertificate(x(noCN), ourCA(new Date())), /no common name/);
      // A multi-valued RDN counts as the apiserver counts it: each O is a group.
      const multi = await makeCert(dir, "multi", "/CN=dan+O=dev/O=ops", client, "ca");
      assert.deepEqual(verifyClientCertificate(x(multi), ourCA(new Date())), {
        username: "dan",
        groups: ["dev", "ops"],
      });
      // Names that are not control characters pass as they are.
      const unicode = await makeCert(dir, "uni", "/O=équipe/CN=zoë:42", client, "ca");
      assert.deepEqual(verifyClientCertificate(x(unicode), ourCA(new Date())), {
        username: "zoë:42",
        groups: ["équipe"],
      });
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("certificate bundles and malformed certificates", () => {
  assert.throws(() => parseCertificateBundle("nothing"), /no PEM certificate/);
  assert.throws(() => certificateFields(Uint8Array.of(0x30, 0x05, 0x30)), /malformed certificate/);
  assert.throws(() => certificateFields(new Uint8Array()), /malformed certificate/);
});
