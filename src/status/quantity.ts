/**
 * Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`) as exact fractions, so that
 * comparisons such as "request equals limit" (the QoS rule) never suffer from floating point.
 *
 * @module
 */

/** An exact non-negative or negative rational value: `numerator / denominator`, denominator > 0. */
export interface Quantity {
  numerator: bigint;
  denominator: bigint;
}

const BINARY_SUFFIXES: Record<string, bigint> = {
  Ki: 1n << 10n,
  Mi: 1n << 20n,
  Gi: 1n << 30n,
  Ti: 1n << 40n,
  Pi: 1n << 50n,
  Ei: 1n << 60n,
};

/** Decimal SI suffixes as powers of ten. */
const DECIMAL_SUFFIXES: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  "": 0,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

// The grammar of k8s.io/apimachinery/pkg/api/resource: a signed decimal number, then either a
// binary suffix, a decimal suffix, or an `e`/`E` exponent.
const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/;

/**
 * Parses a quantity string exactly.
 *
 * @param text The quantity as written in a pod spec, e.g. `250m` or `128Mi`.
 * @return The value, or `undefined` when `text` is not a valid quantity (the caller decides
 * whether that is an error; status reporting must never fail on a bad spec).
 *
 * @example Usage
 * ```ts
 * import { parseQuantity } from "./quantity.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(parseQuantity("1500m"), { numerator: 3n, denominator: 2n });
 * ```
 */
export function parseQuantity(text: string): Quantity | undefined {
  const match = QUANTITY.exec(text.trim());
  if (!match) return undefined;
  const [, sign, whole, fraction = "", exponent, suffix = ""] = match;
  if (whole === "" && fraction === "") return undefined;
  let numerator = BigInt((whole || "0") + fraction);
  let denominator = 10n ** BigInt(fraction.length);
  const power = exponent ? Number(exponent.slice(1)) : DECIMAL_SUFFIXES[suffix] ?? 0;
  const binary = BINARY_SUFFIXES[suffix];
  if (binary !== undefined) numerator *= binary;
  else if (power >= 0) numerator *= 10n ** BigInt(power);
  else denominator *= 10n ** BigInt(-power);
  if (sign === "-") numerator = -numerator;
  return reduce({ numerator, denominator });
}

/**
 * Orders two quantities.
 *
 * @param a First quantity.
 * @param b Second quantity.
 * @return A negative number when a < b, 0 when equal, a positive number when a > b.
 *
 * @example Usage
 * ```ts
 * import { compareQuantities, parseQuantity } from "./quantity.ts";
 * import assert from "node:assert/strict";
 * assert.equal(compareQuantities(parseQuantity("1")!, parseQuantity("1000m")!), 0);
 * ```
 */
export function compareQuantities(a: Quantity, b: Quantity): number {
  const left = a.numerator * b.denominator;
  const right = b.numerator * a.denominator;
  return left === right ? 0 : left < right ? -1 : 1;
}

/**
 * Adds two quantities exactly.
 *
 * @param a First summand.
 * @param b Second summand.
 * @return a + b in lowest terms.
 *
 * @example Usage
 * ```ts
 * import { addQuantities, parseQuantity } from "./quantity.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(addQuantities(parseQuantity("500m")!, parseQuantity("1")!), parseQuantity("1.5"));
 * ```
 */
export function addQuantities(a: Quantity, b: Quantity): Quantity {
  return reduce({
    numerator: a.numerator * b.denominator + b.numerator * a.denominator,
    denominator: a.denominator * b.denominator,
  });
}

function reduce(q: Quantity): Quantity {
  const divisor = gcd(q.numerator < 0n ? -q.numerator : q.numerator, q.denominator);
  return divisor > 1n
    ? { numerator: q.numerator / divisor, denominator: q.denominator / divisor }
    : q;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}
