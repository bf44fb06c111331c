/**
 * Kubernetes resource quantities (`100m`, `1.5`, `128Mi`, `1G`, `1e9`, `0.5Gi`, `+1`), parsed
 * exactly (as a fraction of big integers) so that rounding happens once, the way
 * apimachinery's `Quantity.MilliValue()` / `Value()` round: up.
 *
 * @module
 */

/** An exact, non-negative rational value: `numerator / denominator`. */
export interface Quantity {
  numerator: bigint;
  denominator: bigint;
}

/** A string that is not a Kubernetes quantity. */
export class QuantityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QuantityError";
  }
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

// apimachinery's grammar: <signedNumber><suffix>, where a number is digits with at most one
// decimal point and at least one digit, and the suffix is a binary SI, decimal SI or
// decimal exponent (`e`/`E` followed by a signed integer; a bare `E` is exa).
const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?([a-zA-Z]*|[eE][+-]?\d+)$/;

/**
 * Parses a Kubernetes quantity.
 *
 * @throws QuantityError for anything apimachinery would reject, and for negative values
 *   (no resource systemk maps can be negative).
 * @example Usage
 * ```ts
 * const q = parseQuantity("500m");
 * // q.numerator / q.denominator == 1/2
 * ```
 */
export function parseQuantity(text: string): Quantity {
  const m = QUANTITY.exec(text);
  if (!m) throw new QuantityError(`"${text}" is not a Kubernetes quantity`);
  const [, sign, whole, fraction = "", suffix] = m;
  if (whole === "" && fraction === "") {
    throw new QuantityError(`"${text}" is not a Kubernetes quantity (no digits)`);
  }
  let numerator = BigInt((whole || "0") + fraction);
  let denominator = 10n ** BigInt(fraction.length);
  let exponent: number;
  if (suffix in BINARY_SUFFIXES) {
    numerator *= BINARY_SUFFIXES[suffix];
    exponent = 0;
  } else if (suffix in DECIMAL_SUFFIXES) {
    exponent = DECIMAL_SUFFIXES[suffix];
  } else if (/^[eE][+-]?\d+$/.test(suffix)) {
    exponent = Number(suffix.slice(1));
    // apimachinery caps exponents far below this; the cap keeps bigint sizes sane.
    if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > 1000) {
      throw new QuantityError(`"${text}": exponent out of range`);
    }
  } else {
    throw new QuantityError(`"${text}" has an unknown suffix "${suffix}"`);
  }
  if (exponent >= 0) numerator *= 10n ** BigInt(exponent);
  else denominator *= 10n ** BigInt(-exponent);
  if (sign === "-" && numerator !== 0n) {
    throw new QuantityError(`"${text}" is negative`);
  }
  return { numerator, denominator };
}

function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/** The quantity in thousandths, rounded up (apimachinery's `MilliValue()`). */
export function milliValue(q: Quantity): bigint {
  return ceilDiv(q.numerator * 1000n, q.denominator);
}

/** The quantity as an integer, rounded up (apimachinery's `Value()`). */
export function integerValue(q: Quantity): bigint {
  return ceilDiv(q.numerator, q.denominator);
}

/** `ceil(a / b)` for two quantities, as the downward API divides by a `divisor`. */
export function divideCeil(a: bigint, b: bigint): bigint {
  return ceilDiv(a, b);
}

/**
 * Orders two quantities exactly (the QoS rule "request equals limit" needs exact equality).
 *
 * @return negative when a < b, 0 when equal, positive when a > b.
 * @example Usage
 * ```ts
 * import { compareQuantities, parseQuantity } from "./quantity.ts";
 * import assert from "node:assert/strict";
 * assert.equal(compareQuantities(parseQuantity("1"), parseQuantity("1000m")), 0);
 * ```
 */
export function compareQuantities(a: Quantity, b: Quantity): number {
  const left = a.numerator * b.denominator;
  const right = b.numerator * a.denominator;
  return left === right ? 0 : left < right ? -1 : 1;
}

/**
 * Adds two quantities exactly, in lowest terms.
 *
 * @example Usage
 * ```ts
 * import { addQuantities, parseQuantity } from "./quantity.ts";
 * import assert from "node:assert/strict";
 * assert.deepEqual(addQuantities(parseQuantity("500m"), parseQuantity("1")), { numerator: 3n, denominator: 2n });
 * ```
 */
export function addQuantities(a: Quantity, b: Quantity): Quantity {
  const numerator = a.numerator * b.denominator + b.numerator * a.denominator;
  const denominator = a.denominator * b.denominator;
  const divisor = gcd(numerator, denominator);
  return { numerator: numerator / divisor, denominator: denominator / divisor };
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

// The kubelet's constants (pkg/kubelet/cm/helpers_linux.go).
const MIN_SHARES = 2n;
const MAX_SHARES = 262144n;
const SHARES_PER_CPU = 1024n;
const MIN_QUOTA_PERCENT_TENTHS = 10n; // kubelet's MinQuotaPeriod: 1 ms per 100 ms period = 1 %

/**
 * `CPUWeight=` for a CPU request, exactly as the kubelet computes it on cgroup v2:
 * `MilliCPUToShares` (shares = milli·1024/1000, clamped to [2, 262144]) followed by
 * `CPUSharesToCPUWeight` (1 + (shares−2)·9999/262142).
 */
export function cpuWeightForRequest(milliCPU: bigint): bigint {
  let shares = milliCPU === 0n ? MIN_SHARES : (milliCPU * SHARES_PER_CPU) / 1000n;
  if (shares < MIN_SHARES) shares = MIN_SHARES;
  if (shares > MAX_SHARES) shares = MAX_SHARES;
  return 1n + ((shares - 2n) * 9999n) / 262142n;
}

/**
 * `CPUQuota=` for a CPU limit: percent of one CPU (`500m` → `50%`), with the kubelet's floor
 * of 1 % (its minimum quota of 1 ms per 100 ms period); fractions kept to one decimal, which
 * systemd accepts.
 */
export function cpuQuotaForLimit(milliCPU: bigint): string {
  const tenths = milliCPU < MIN_QUOTA_PERCENT_TENTHS ? MIN_QUOTA_PERCENT_TENTHS : milliCPU;
  const whole = tenths / 10n;
  const rest = tenths % 10n;
  return rest === 0n ? `${whole}%` : `${whole}.${rest}%`;
}
