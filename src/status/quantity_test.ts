import assert from "node:assert/strict";
import { addQuantities, compareQuantities, parseQuantity } from "./quantity.ts";

const valid: [string, bigint, bigint][] = [
  ["0", 0n, 1n],
  ["1", 1n, 1n],
  ["250m", 1n, 4n],
  ["1500m", 3n, 2n],
  ["0.5", 1n, 2n],
  [".5", 1n, 2n],
  ["5.", 5n, 1n],
  ["+2", 2n, 1n],
  ["-2", -2n, 1n],
  ["100n", 1n, 10_000_000n],
  ["3u", 3n, 1_000_000n],
  ["2k", 2000n, 1n],
  ["1M", 1_000_000n, 1n],
  ["1G", 1_000_000_000n, 1n],
  ["1T", 10n ** 12n, 1n],
  ["1P", 10n ** 15n, 1n],
  ["1E", 10n ** 18n, 1n],
  ["1Ki", 1024n, 1n],
  ["128Mi", 128n * 1024n * 1024n, 1n],
  ["1.5Gi", 3n * 1024n ** 3n / 2n, 1n],
  ["1Ti", 1024n ** 4n, 1n],
  ["1Pi", 1024n ** 5n, 1n],
  ["1Ei", 1024n ** 6n, 1n],
  ["1e3", 1000n, 1n],
  ["12E-1", 6n, 5n],
  ["2e+2", 200n, 1n],
];

for (const [text, numerator, denominator] of valid) {
  Deno.test(`parseQuantity(${JSON.stringify(text)}) = ${numerator}/${denominator}`, () => {
    assert.deepEqual(parseQuantity(text), { numerator, denominator });
  });
}

for (const text of ["", "m", "abc", "1.2.3", "1Qi", "1 Gi", "Gi", "1e", "--1", "1mi"]) {
  Deno.test(`parseQuantity(${JSON.stringify(text)}) is invalid`, () => {
    assert.equal(parseQuantity(text), undefined);
  });
}

Deno.test("compareQuantities orders exactly across suffixes", () => {
  const q = (text: string) => parseQuantity(text)!;
  assert.equal(compareQuantities(q("1"), q("1000m")), 0);
  assert.equal(compareQuantities(q("1Gi"), q("1073741824")), 0);
  assert.equal(compareQuantities(q("1G"), q("1Gi")), -1);
  assert.equal(compareQuantities(q("1001m"), q("1")), 1);
  assert.equal(compareQuantities(q("-1"), q("0")), -1);
});

Deno.test("addQuantities is exact and reduced", () => {
  const q = (text: string) => parseQuantity(text)!;
  assert.deepEqual(addQuantities(q("100m"), q("200m")), q("300m"));
  assert.deepEqual(addQuantities(q("512Mi"), q("512Mi")), q("1Gi"));
  assert.deepEqual(addQuantities(q("0.1"), q("0.2")), { numerator: 3n, denominator: 10n });
});
