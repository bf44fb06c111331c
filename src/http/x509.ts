/**
 * Client certificate verification for the kubelet API, done here because Deno's TLS layer does
 * not verify client certificates against a CA of our choosing (with `node:https`,
 * `requestCert: true` hands the certificate over but reports it unauthorized even when the CA
 * signed it). What the apiserver's and kubelet's x509 authenticator checks, we check: issued
 * and signed by one of the trusted CAs, within its validity period, and usable for client
 * authentication (extended key usage, when the certificate restricts it).
 *
 * @module
 */
import { X509Certificate } from "node:crypto";

/** Who a verified certificate names: CN is the user, each O a group. */
export interface CertificateUser {
  username: string;
  groups: string[];
}

/** Why a certificate was refused, for the log (the client only sees 401). */
export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "CertificateError";
  }
}

/** Splits a PEM bundle (a `--client-ca-file`) into certificates. */
export function parseCertificateBundle(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  if (!blocks) throw new CertificateError("no PEM certificate found");
  return blocks.map((block) => new X509Certificate(block));
}

const CLIENT_AUTH = "1.3.6.1.5.5.7.3.2";
const ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0";

/**
 * Verifies a client certificate against trusted CAs and names its user.
 *
 * @param cert the certificate the client presented.
 * @param cas the trusted CAs (the `--client-ca-file` bundle).
 * @param now the time to check validity at.
 * @return CN as username and O values as groups.
 * @throws {CertificateError} when no CA issued and signed it, it is not valid at `now`, its
 *   extended key usage excludes client authentication, or it has no CN.
 */
export function verifyClientCertificate(
  cert: X509Certificate,
  cas: readonly X509Certificate[],
  now: Date,
): CertificateUser {
  const issuer = cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (!issuer) throw new CertificateError(`${oneLine(cert.subject)}: not signed by a trusted CA`);
  for (const c of [cert, issuer]) {
    if (now < new Date(c.validFrom) || now > new Date(c.validTo)) {
      throw new CertificateError(
        `${oneLine(c.subject)}: not valid at ${now.toISOString()} (${c.validFrom} to ${c.validTo})`,
      );
    }
  }
  const usages = extendedKeyUsages(new Uint8Array(cert.raw));
  if (usages && !usages.includes(CLIENT_AUTH) && !usages.includes(ANY_EXTENDED_KEY_USAGE)) {
    throw new CertificateError(`${oneLine(cert.subject)}: not for client authentication`);
  }
  const user = subjectUser(cert.subject);
  if (!user.username) throw new CertificateError(`${oneLine(cert.subject)}: no common name`);
  return user;
}

/** CN and O values of a subject in Node's one-attribute-per-line form. */
export function subjectUser(subject: string): CertificateUser {
  let username = "";
  const groups: string[] = [];
  for (const line of subject.split("\n")) {
    const eq = line.indexOf("=");
    const [key, value] = [line.slice(0, eq), line.slice(eq + 1)];
    if (key === "CN") username = value;
    if (key === "O") groups.push(value);
  }
  return { username, groups };
}

function oneLine(subject: string): string {
  return subject.split("\n").join(", ");
}

/** One DER element: tag, and where its content lies. */
interface Element {
  tag: number;
  start: number;
  end: number;
}

/** The DER elements directly inside `der[start, end)`. */
function children(der: Uint8Array, start: number, end: number): Element[] {
  const out: Element[] = [];
  let i = start;
  while (i < end) {
    const tag = der[i++];
    let length = der[i++];
    if (length & 0x80) {
      const bytes = length & 0x7f;
      length = 0;
      for (let k = 0; k < bytes; k++) length = length * 256 + der[i++];
    }
    if (i + length > end) throw new CertificateError("malformed certificate (DER length)");
    out.push({ tag, start: i, end: i + length });
    i += length;
  }
  return out;
}

/** Dotted form of a DER OBJECT IDENTIFIER's content. */
function oid(der: Uint8Array, start: number, end: number): string {
  const parts: number[] = [];
  let value = 0;
  for (let i = start; i < end; i++) {
    value = value * 128 + (der[i] & 0x7f);
    if (!(der[i] & 0x80)) {
      if (parts.length === 0) {
        // The first subidentifier packs the first two arcs: 40 * first + second.
        const first = Math.min(2, Math.floor(value / 40));
        parts.push(first, value - first * 40);
      } else {
        parts.push(value);
      }
      value = 0;
    }
  }
  return parts.join(".");
}

const SEQUENCE = 0x30;
const OBJECT_IDENTIFIER = 0x06;
const OCTET_STRING = 0x04;
const EXTENSIONS = 0xa3;
const EXTENDED_KEY_USAGE = "2.5.29.37";

/**
 * The extended key usage OIDs of a DER certificate, or undefined when it has no such extension
 * (then it is good for any use). Node's `X509Certificate.keyUsage` is not implemented in Deno.
 */
export function extendedKeyUsages(der: Uint8Array): string[] | undefined {
  const [certificate] = children(der, 0, der.length);
  const [tbs] = children(der, certificate.start, certificate.end);
  const extensions = children(der, tbs.start, tbs.end).find((e) => e.tag === EXTENSIONS);
  if (!extensions) return undefined;
  const [list] = children(der, extensions.start, extensions.end);
  for (const extension of children(der, list.start, list.end)) {
    const parts = children(der, extension.start, extension.end);
    const id = parts.find((p) => p.tag === OBJECT_IDENTIFIER);
    const value = parts.find((p) => p.tag === OCTET_STRING);
    if (!id || !value || oid(der, id.start, id.end) !== EXTENDED_KEY_USAGE) continue;
    const [sequence] = children(der, value.start, value.end);
    if (sequence?.tag !== SEQUENCE) throw new CertificateError("malformed extended key usage");
    return children(der, sequence.start, sequence.end)
      .filter((e) => e.tag === OBJECT_IDENTIFIER)
      .map((e) => oid(der, e.start, e.end));
  }
  return undefined;
}
