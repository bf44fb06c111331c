/**
 * Client certificate verification for the kubelet API, done here because Deno's TLS layer does
 * not verify client certificates against a CA of our choosing (with `node:https`,
 * `requestCert: true` hands the certificate over but reports it unauthorized even when the CA
 * signed it). What the apiserver's and kubelet's x509 authenticator checks, we check: issued
 * and signed by one of the trusted CAs, within its validity period, and usable for client
 * authentication (extended key usage of the certificate and its CA, when they restrict it).
 *
 * Two checks go further than Go's, because of what Deno's TLS server lets through:
 *
 * - only X.509 **v3** certificates are accepted: Deno 2.9's TLS server takes a v1 client
 *   certificate without checking that the client holds its private key, so a v1 certificate
 *   would be a bearer token for anyone who has seen it;
 * - the user (CN) and groups (each O) are read from the subject's DER, never from a text form
 *   of it, and a CN or O holding a control character is refused, as is a subject with more than
 *   one CN: `CN=system:node:x\nO=system:masters` must not become group `system:masters`.
 *
 * @module
 */
import { X509Certificate } from "node:crypto";
import {
  derChild,
  derChildren,
  type DerElement,
  DerError,
  derObjectIdentifier,
  derString,
  DerTag,
} from "./der.ts";

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
const EXTENDED_KEY_USAGE = "2.5.29.37";
const COMMON_NAME = "2.5.4.3";
const ORGANIZATION = "2.5.4.10";
/** C0 and C1 control characters and DEL: a name holding one is refused. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** What the kubelet API reads from a certificate's DER. */
export interface CertificateFields {
  /** 1, 2 or 3 (the TBSCertificate's version field plus one; absent means 1). */
  version: number;
  /** Every CN of the subject, in order. */
  commonNames: string[];
  /** Every O of the subject, in order. */
  organizations: string[];
  /** The extended key usage OIDs, or undefined without that extension (good for any use). */
  extendedKeyUsages?: string[];
}

/**
 * Reads version, subject CNs and Os, and extended key usage from a DER certificate.
 *
 * @throws {CertificateError} when the DER is malformed, or a CN or O is not a string type the
 *   apiserver reads.
 */
export function certificateFields(der: Uint8Array): CertificateFields {
  return readDer(() => {
    const tbs = tbsCertificate(der);
    const names = subjectAttributes(der, tbs.subject);
    return {
      version: tbs.version,
      commonNames: names.get(COMMON_NAME) ?? [],
      organizations: names.get(ORGANIZATION) ?? [],
      extendedKeyUsages: tbs.extensions ? extendedKeyUsage(der, tbs.extensions) : undefined,
    };
  });
}

/**
 * The extended key usage OIDs of a DER certificate, or undefined when it has no such extension
 * (then it is good for any use). Node's `X509Certificate.keyUsage` is not implemented in Deno.
 * The subject is not read: a CA's names need not be ones the kubelet API could take as a user.
 *
 * @throws {CertificateError} when the DER is malformed.
 */
export function extendedKeyUsages(der: Uint8Array): string[] | undefined {
  return readDer(() => {
    const { extensions } = tbsCertificate(der);
    return extensions ? extendedKeyUsage(der, extensions) : undefined;
  });
}

/** Runs a DER reader, turning its errors into certificate errors. */
function readDer<T>(read: () => T): T {
  try {
    return read();
  } catch (e) {
    if (e instanceof DerError) throw new CertificateError(`malformed certificate: ${e.message}`);
    throw e;
  }
}

/** The TBSCertificate's version, and where its subject and extensions are. */
function tbsCertificate(der: Uint8Array) {
  const [certificate, ...rest] = derChildren(der);
  if (!certificate || certificate.tag !== DerTag.SEQUENCE || rest.length) {
    throw new DerError("not a certificate");
  }
  const [tbs] = derChildren(der, certificate);
  if (tbs?.tag !== DerTag.SEQUENCE) throw new DerError("no TBSCertificate");
  const fields = derChildren(der, tbs);
  // version [0] EXPLICIT INTEGER DEFAULT v1, serialNumber, signature, issuer, validity, subject
  const explicitVersion = fields[0]?.tag === 0xa0 ? fields.shift()! : undefined;
  const subject = fields[4];
  if (subject?.tag !== DerTag.SEQUENCE) throw new DerError("no subject");
  return {
    version: explicitVersion ? versionNumber(der, explicitVersion) : 1,
    subject,
    extensions: fields.find((e) => e.tag === 0xa3),
  };
}

function versionNumber(der: Uint8Array, explicit: DerElement): number {
  const integer = derChild(der, explicit, { tag: DerTag.INTEGER });
  // v1 is 0, v2 is 1, v3 is 2; one content byte holds all of them.
  if (integer.end - integer.start !== 1 || der[integer.start] > 2) {
    throw new DerError("unknown certificate version");
  }
  return der[integer.start] + 1;
}

/** CN and O values of a Name (an RDNSequence), by OID; other attributes are not decoded. */
function subjectAttributes(der: Uint8Array, name: DerElement): Map<string, string[]> {
  const values = new Map<string, string[]>();
  for (const rdn of derChildren(der, name)) {
    if (rdn.tag !== DerTag.SET) throw new DerError("a name component is not a SET");
    // A multi-valued RDN (CN=a+O=b) counts every value, as Go's pkix.Name does.
    for (const attribute of derChildren(der, rdn)) {
      if (attribute.tag !== DerTag.SEQUENCE) throw new DerError("an attribute is not a SEQUENCE");
      const [type, value, ...extra] = derChildren(der, attribute);
      if (type?.tag !== DerTag.OBJECT_IDENTIFIER || !value || extra.length) {
        throw new DerError("an attribute is not a type and a value");
      }
      const oid = derObjectIdentifier(der, type);
      if (oid !== COMMON_NAME && oid !== ORGANIZATION) continue;
      values.set(oid, [...values.get(oid) ?? [], derString(der, value)]);
    }
  }
  return values;
}

/** The OIDs of an extendedKeyUsage extension, or undefined when `extensions` has none. */
function extendedKeyUsage(der: Uint8Array, extensions: DerElement): string[] | undefined {
  const list = derChild(der, extensions, { tag: DerTag.SEQUENCE });
  for (const extension of derChildren(der, list)) {
    // Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }
    const parts = derChildren(der, extension);
    const id = parts[0];
    const value = parts.at(-1);
    if (id?.tag !== DerTag.OBJECT_IDENTIFIER || value?.tag !== DerTag.OCTET_STRING) {
      throw new DerError("malformed extension");
    }
    if (derObjectIdentifier(der, id) !== EXTENDED_KEY_USAGE) continue;
    return derChildren(der, derChild(der, value, { tag: DerTag.SEQUENCE })).map((usage) => {
      if (usage.tag !== DerTag.OBJECT_IDENTIFIER) throw new DerError("malformed key usage");
      return derObjectIdentifier(der, usage);
    });
  }
  return undefined;
}

/** What {@link verifyClientCertificate} checks a certificate against (Go's `VerifyOptions`). */
export interface VerifyOptions {
  /** The trusted CAs (the `--client-ca-file` bundle). */
  roots: readonly X509Certificate[];
  /** The time to check validity at. */
  currentTime: Date;
}

/**
 * Verifies a client certificate against trusted CAs and names its user.
 *
 * @param cert the certificate the client presented.
 * @param options the trusted CAs (`roots`) and the time to check validity at (`currentTime`).
 * @return the one CN as username and the O values as groups.
 * @throws {CertificateError} when it is not an X.509 v3 certificate, no CA issued and signed
 *   it, it or its CA is not valid at `currentTime`, the extended key usage of either excludes client
 *   authentication, or its subject has no CN, several, or a CN or O with a control character.
 */
export function verifyClientCertificate(
  cert: X509Certificate,
  options: VerifyOptions,
): CertificateUser {
  const { roots: cas, currentTime: now } = options;
  const fields = certificateFields(new Uint8Array(cert.raw));
  const who = describe(fields);
  if (fields.version !== 3) {
    throw new CertificateError(
      `${who}: an X.509 v${fields.version} certificate; only v3 client certificates are ` +
        `accepted (make it with extensions, e.g. extendedKeyUsage=clientAuth)`,
    );
  }
  const issuer = cas.find((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
  if (!issuer) throw new CertificateError(`${who}: not signed by a trusted CA`);
  for (const c of [cert, issuer]) {
    if (now < new Date(c.validFrom) || now > new Date(c.validTo)) {
      throw new CertificateError(
        `${c === cert ? who : "its CA"}: not valid at ${now.toISOString()} ` +
          `(${c.validFrom} to ${c.validTo})`,
      );
    }
  }
  // As Go's chain verification: every certificate of the chain that restricts its extended
  // key usage must allow client authentication.
  const chain = [
    { usages: fields.extendedKeyUsages, what: who },
    { usages: extendedKeyUsages(new Uint8Array(issuer.raw)), what: `${who}: its CA` },
  ];
  for (const { usages, what } of chain) {
    if (usages && !usages.includes(CLIENT_AUTH) && !usages.includes(ANY_EXTENDED_KEY_USAGE)) {
      throw new CertificateError(`${what}: not for client authentication`);
    }
  }
  const [username, ...more] = fields.commonNames;
  if (!username) throw new CertificateError(`${who}: no common name`);
  if (more.length) throw new CertificateError(`${who}: more than one common name`);
  for (const name of [username, ...fields.organizations]) {
    if (CONTROL.test(name)) {
      throw new CertificateError(`${who}: a control character in the subject's CN or O`);
    }
  }
  return { username, groups: fields.organizations };
}

/** The subject's CNs and Os for a log line, control characters escaped. */
function describe(fields: CertificateFields): string {
  const parts = [
    ...fields.organizations.map((o) => `O=${JSON.stringify(o)}`),
    ...fields.commonNames.map((cn) => `CN=${JSON.stringify(cn)}`),
  ];
  return `certificate ${parts.join(", ") || "without CN or O"}`;
}
