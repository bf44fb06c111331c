/**
 * A small reader of DER (the encoding of X.509 certificates), for the few fields the kubelet
 * API needs from a client certificate: its version, the attributes of its subject and its
 * extended key usage. The certificate arrives from the network, so every length is checked
 * against its enclosing element before anything is read or allocated, only definite lengths of
 * at most four bytes and one-byte tags are accepted (DER has nothing else in a certificate),
 * and strings are decoded only in the types Go's `crypto/x509` (the apiserver's parser) reads.
 *
 * @module
 */

/** One DER element: its tag, and where its content lies in the buffer. */
export interface DerElement {
  tag: number;
  start: number;
  end: number;
}

/** The bytes are not the DER they should be. */
export class DerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "DerError";
  }
}

/** DER tags of the universal class that certificates use. */
export const DerTag = {
  INTEGER: 0x02,
  OCTET_STRING: 0x04,
  OBJECT_IDENTIFIER: 0x06,
  UTF8_STRING: 0x0c,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  T61_STRING: 0x14,
  IA5_STRING: 0x16,
  BMP_STRING: 0x1e,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/**
 * The elements directly inside `parent` (default: the whole buffer), in order.
 *
 * @throws {DerError} when an element's header or content runs past the end of `parent`, or
 *   uses an encoding DER does not allow in a certificate.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * // SEQUENCE { INTEGER 2 }
 * const [sequence] = derChildren(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x02));
 * assert.deepEqual(derChildren(Uint8Array.of(0x30, 0x03, 0x02, 0x01, 0x02), sequence), [
 *   { tag: 0x02, start: 4, end: 5 },
 * ]);
 * ```
 */
export function derChildren(der: Uint8Array, parent?: DerElement): DerElement[] {
  const end = parent?.end ?? der.length;
  if (end > der.length) throw new DerError("element extends past the data");
  const out: DerElement[] = [];
  let i = parent?.start ?? 0;
  while (i < end) {
    if (end - i < 2) throw new DerError("truncated element header");
    const tag = der[i++];
    // The high-tag-number form (low bits all set) appears nowhere in a certificate.
    if ((tag & 0x1f) === 0x1f) throw new DerError(`unsupported tag 0x${tag.toString(16)}`);
    let length = der[i++];
    if (length & 0x80) {
      const bytes = length & 0x7f;
      // 0x80 is BER's indefinite length; more than four bytes would mean gigabytes.
      if (bytes === 0 || bytes > 4) throw new DerError("unsupported length encoding");
      if (end - i < bytes) throw new DerError("truncated element length");
      length = 0;
      for (let k = 0; k < bytes; k++) length = length * 256 + der[i++];
    }
    if (length > end - i) throw new DerError("element length exceeds its container");
    out.push({ tag, start: i, end: i + length });
    i += length;
  }
  return out;
}

/** What {@link derChild} expects inside its parent. */
export interface DerChildOptions {
  /** The tag the only element must have ({@link DerTag}). */
  tag: number;
}

/** The only element inside `parent`, which must have tag `tag`. */
export function derChild(
  der: Uint8Array,
  parent: DerElement,
  options: DerChildOptions,
): DerElement {
  const { tag } = options;
  const children = derChildren(der, parent);
  if (children.length !== 1 || children[0].tag !== tag) {
    throw new DerError(`expected one element of tag 0x${tag.toString(16)}`);
  }
  return children[0];
}

/**
 * The dotted form of an OBJECT IDENTIFIER's content.
 *
 * @throws {DerError} when the content ends inside a sub-identifier or one does not fit 32 bits.
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const der = Uint8Array.of(0x06, 0x03, 0x55, 0x04, 0x03);
 * assert.equal(derObjectIdentifier(der, { tag: 0x06, start: 2, end: 5 }), "2.5.4.3");
 * ```
 */
export function derObjectIdentifier(der: Uint8Array, element: DerElement): string {
  if (element.end <= element.start) throw new DerError("empty object identifier");
  const parts: number[] = [];
  let value = 0;
  let digits = 0;
  for (let i = element.start; i < element.end; i++) {
    // Five base-128 digits hold 35 bits: enough for every OID of a certificate, and no float
    // arithmetic loses precision on the way.
    if (++digits > 5) throw new DerError("object identifier component too large");
    value = value * 128 + (der[i] & 0x7f);
    if (der[i] & 0x80) continue;
    if (parts.length === 0) {
      // The first sub-identifier packs the first two arcs: 40 * first + second.
      const first = Math.min(2, Math.floor(value / 40));
      parts.push(first, value - first * 40);
    } else {
      parts.push(value);
    }
    value = 0;
    digits = 0;
  }
  if (digits !== 0) throw new DerError("object identifier ends inside a component");
  return parts.join(".");
}

const PRINTABLE = /^[A-Za-z0-9 '()+,\-./:=?]*$/;

/**
 * A string attribute value, decoded as Go's `crypto/x509` decodes it (so the text is the one
 * the apiserver sees): UTF8String, PrintableString, IA5String, NumericString, T61String
 * (ASCII only here) and BMPString (UTF-16, big-endian).
 *
 * @throws {DerError} for any other type, or bytes that are not valid in the type.
 */
export function derString(der: Uint8Array, element: DerElement): string {
  const bytes = der.subarray(element.start, element.end);
  const ascii = () => Array.from(bytes, (b) => String.fromCharCode(b)).join("");
  switch (element.tag) {
    case DerTag.UTF8_STRING:
      try {
        return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        throw new DerError("UTF8String is not valid UTF-8");
      }
    case DerTag.PRINTABLE_STRING: {
      // Go also allows '*' and '&', which some CAs put into PrintableStrings.
      const text = ascii();
      if (!PRINTABLE.test(text.replace(/[*&]/g, ""))) {
        throw new DerError("PrintableString with a character it may not hold");
      }
      return text;
    }
    case DerTag.IA5_STRING:
    case DerTag.T61_STRING:
      // Go takes T61String bytes as they are; only their ASCII subset means the same to both.
      if (bytes.some((b) => b > 0x7f)) throw new DerError("string with a non-ASCII byte");
      return ascii();
    case DerTag.NUMERIC_STRING:
      if (bytes.some((b) => b !== 0x20 && (b < 0x30 || b > 0x39))) {
        throw new DerError("NumericString with a character other than a digit or space");
      }
      return ascii();
    case DerTag.BMP_STRING: {
      if (bytes.length % 2 !== 0) throw new DerError("BMPString of odd length");
      // A trailing NUL character is dropped, as Go drops it.
      const end = bytes.length >= 2 && bytes.at(-1) === 0 && bytes.at(-2) === 0
        ? bytes.length - 2
        : bytes.length;
      try {
        return new TextDecoder("utf-16be", { fatal: true, ignoreBOM: true })
          .decode(bytes.subarray(0, end));
      } catch {
        throw new DerError("BMPString is not valid UTF-16");
      }
    }
    default:
      throw new DerError(`unsupported string type 0x${element.tag.toString(16)}`);
  }
}
