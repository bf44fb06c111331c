import assert from "node:assert/strict";
import { derChild, derChildren, DerError, derObjectIdentifier, derString, DerTag } from "./der.ts";

const bytes = (...b: number[]) => Uint8Array.of(...b);
const whole = (der: Uint8Array) => derChildren(der)[0];

Deno.test("DER elements: lengths are checked against their container before use", () => {
  // Long-form length (0x81 0x03) and two elements side by side.
  assert.deepEqual(derChildren(bytes(0x04, 0x81, 0x03, 1, 2, 3, 0x05, 0x00)), [
    { tag: 0x04, start: 3, end: 6 },
    { tag: 0x05, start: 8, end: 8 },
  ]);
  const refused: [Uint8Array, RegExp][] = [
    [bytes(0x30), /truncated element header/],
    [bytes(0x30, 0x05, 0x02), /length exceeds its container/],
    [bytes(0x30, 0x80, 0x00, 0x00), /unsupported length encoding/],
    [bytes(0x30, 0x85, 1, 0, 0, 0, 0), /unsupported length encoding/],
    [bytes(0x30, 0x84, 0xff, 0xff, 0xff, 0xff), /length exceeds its container/],
    [bytes(0x30, 0x82, 0x01), /truncated element length/],
    [bytes(0x1f, 0x01, 0x00), /unsupported tag/],
  ];
  for (const [der, message] of refused) assert.throws(() => derChildren(der), message);
  // An inner element may not reach past its parent, even when the buffer goes on.
  const der = bytes(0x30, 0x02, 0x04, 0x03, 0xaa, 0xbb, 0xcc);
  const sequence = { tag: 0x30, start: 2, end: 4 };
  assert.throws(() => derChildren(der, sequence), /exceeds its container/);
  assert.throws(() => derChild(der, whole(bytes(0x30, 0x00)), { tag: DerTag.INTEGER }), DerError);
});

Deno.test("DER object identifiers", () => {
  const oid = (...content: number[]) =>
    derObjectIdentifier(bytes(...content), { tag: 6, start: 0, end: content.length });
  assert.equal(oid(0x55, 0x04, 0x0a), "2.5.4.10");
  assert.equal(oid(0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02), "1.3.6.1.5.5.7.3.2");
  assert.equal(oid(0x88, 0x37), "2.999");
  assert.throws(() => oid(0x55, 0x84), /ends inside a component/);
  assert.throws(() => oid(0x55, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f), /too large/);
  assert.throws(() => oid(), /empty/);
});

Deno.test("DER strings: the types Go reads, and nothing they may not hold", () => {
  const str = (tag: number, ...content: number[]) =>
    derString(bytes(tag, content.length, ...content), { tag, start: 2, end: 2 + content.length });
  const text = (s: string) => [...new TextEncoder().encode(s)];
  assert.equal(str(DerTag.UTF8_STRING, ...text("zoë\n")), "zoë\n");
  assert.equal(str(DerTag.PRINTABLE_STRING, ...text("a-b *.c")), "a-b *.c");
  assert.equal(str(DerTag.IA5_STRING, ...text("a@b")), "a@b");
  assert.equal(str(DerTag.NUMERIC_STRING, ...text("12 3")), "12 3");
  assert.equal(str(DerTag.T61_STRING, ...text("t61")), "t61");
  assert.equal(str(DerTag.BMP_STRING, 0x00, 0x41, 0x00, 0xe9, 0x00, 0x00), "Aé");
  const refused: [number[], RegExp][] = [
    [[DerTag.UTF8_STRING, 0xc3, 0x28], /not valid UTF-8/],
    [[DerTag.PRINTABLE_STRING, ...text("a@b")], /PrintableString/],
    [[DerTag.PRINTABLE_STRING, ...text("a\nb")], /PrintableString/],
    [[DerTag.IA5_STRING, 0xe9], /non-ASCII/],
    [[DerTag.T61_STRING, 0xe9], /non-ASCII/],
    [[DerTag.NUMERIC_STRING, ...text("1a")], /NumericString/],
    [[DerTag.BMP_STRING, 0x00], /odd length/],
    [[DerTag.BMP_STRING, 0xd8, 0x00], /not valid UTF-16/],
    [[0x1c, 0, 0, 0, 0x41], /unsupported string type 0x1c/],
  ];
  for (const [[tag, ...content], message] of refused) {
    assert.throws(() => str(tag, ...content), message);
  }
});
