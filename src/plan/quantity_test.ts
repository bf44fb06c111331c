import assert from "node:assert/strict";
import fc from "fast-check";
import {
  addQuantities,
  compareQuantities,
  cpuQuotaForLimit,
  cpuWeightForRequest,
  integerValue,
  milliValue,
  parseQuantity,
  QuantityError,
} from "./quantity.ts";

Deno.test("parseQuantity: every Kubernetes form, rounded up like apimachinery", () => {
  const table: [string, bigint, bigint][] = [
    // text, MilliValue(), Value()
    ["100m", 100n, 1n],
    ["1.5", 1500n, 2n],
    ["128Mi", 134217728000n, 134217728n],
    ["1G", 1000000000000n, 1000000000n],
    ["1e9", 1000000000000n, 1000000000n],
    ["1E3", 1000000n, 1000n], // exponent, not exa
    ["1E", 1000000000000000000000n, 1000000000000000000n], // exa
    ["0.5Gi", 536870912000n, 536870912n],
    ["+1", 1000n, 1n],
    [".5", 500n, 1n],
    ["5.", 5000n, 5n],
    ["1n", 1n, 1n],
    ["1u", 1n, 1n],
    ["2500u", 3n, 1n],
    ["0", 0n, 0n],
    ["-0", 0n, 0n],
    ["1k", 1000000n, 1000n],
    ["1Ki", 1024000n, 1024n],
    ["1.5Ki", 1536000n, 1536n],
    ["12e-1", 1200n, 2n],
    ["1e+2", 100000n, 100n],
    ["3Ei", 3458764513820540928000n, 3458764513820540928n],
  ];
  for (const [text, milli, value] of table) {
    const q = parseQuantity(text);
    assert.equal(milliValue(q), milli, `${text} milli`);
    assert.equal(integerValue(q), value, `${text} value`);
  }
});

Deno.test("parseQuantity: rejects what apimachinery rejects, and negatives", () => {
  for (
    const bad of ["", "abc", "1Q", "--1", "1.2.3", "-1", "1e", "Mi", "1 Mi", "1mi", ".", "1KiB"]
  ) {
    assert.throws(() => parseQuantity(bad), QuantityError, bad);
  }
});

Deno.test("parseQuantity: <integer><suffix> is exactly integer × multiplier (property)", () => {
  const multipliers: [string, bigint, bigint][] = [
    ["", 1n, 1n],
    ["k", 1000n, 1n],
    ["M", 1000000n, 1n],
    ["G", 1000000000n, 1n],
    ["Ki", 1024n, 1n],
    ["Mi", 1048576n, 1n],
    ["Gi", 1073741824n, 1n],
    ["m", 1n, 1000n],
    ["e3", 1000n, 1n],
  ];
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 10n ** 15n }),
      fc.constantFrom(...multipliers),
      (n, m) => {
        const [suffix, times, per] = m;
        const q = parseQuantity(`${n}${suffix}`);
        // value·1000 rounded up equals the exact milli value.
        assert.equal(milliValue(q), (n * times * 1000n + per - 1n) / per);
      },
    ),
  );
});

Deno.test("cpuWeightForRequest: the kubelet's shares → cgroup v2 weight", () => {
  const table: [bigint, bigint][] = [
    [0n, 1n], // 0 → MinShares 2 → weight 1
    [1n, 1n], // 1 share → clamped to 2
    [100n, 4n], // 102 shares → 1 + 100·9999/262142
    [250n, 10n], // 256 shares
    [1000n, 39n], // 1024 shares
    [1500n, 59n],
    [2000n, 79n],
    [200000n, 7812n], // 204800 shares
    [300000n, 10000n], // clamped to MaxShares
  ];
  for (const [milli, weight] of table) {
    assert.equal(cpuWeightForRequest(milli), weight, `${milli}m`);
  }
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 10n ** 7n }),
      fc.bigInt({ min: 0n, max: 1000n }),
      (a, d) => {
        const w = cpuWeightForRequest(a);
        assert.ok(w >= 1n && w <= 10000n);
        assert.ok(cpuWeightForRequest(a + d) >= w, "monotonic");
      },
    ),
  );
});

Deno.test("cpuQuotaForLimit: percent of one CPU, the kubelet's 1% floor, one decimal", () => {
  const table: [bigint, string][] = [
    [500n, "50%"],
    [1500n, "150%"],
    [1n, "1%"],
    [10n, "1%"],
    [11n, "1.1%"],
    [155n, "15.5%"],
    [4000n, "400%"],
  ];
  for (const [milli, quota] of table) assert.equal(cpuQuotaForLimit(milli), quota);
});

Deno.test("compareQuantities orders exactly across suffixes", () => {
  const q = parseQuantity;
  assert.equal(compareQuantities(q("1"), q("1000m")), 0);
  assert.equal(compareQuantities(q("1Gi"), q("1073741824")), 0);
  assert.equal(compareQuantities(q("1G"), q("1Gi")), -1);
  assert.equal(compareQuantities(q("1001m"), q("1")), 1);
  assert.equal(compareQuantities(q("0.1"), q("100m")), 0);
});

Deno.test("addQuantities is exact and in lowest terms", () => {
  const q = parseQuantity;
  assert.equal(compareQuantities(addQuantities(q("100m"), q("200m")), q("300m")), 0);
  assert.equal(compareQuantities(addQuantities(q("512Mi"), q("512Mi")), q("1Gi")), 0);
  assert.deepEqual(addQuantities(q("0.1"), q("0.2")), { numerator: 3n, denominator: 10n });
  assert.deepEqual(addQuantities(q("0"), q("0")), { numerator: 0n, denominator: 1n });
});
