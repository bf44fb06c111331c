/**
 * The one error type of the unit module.
 *
 * @module
 */

/**
 * A string that systemd cannot represent in the requested position (a NUL byte, a line break in
 * a raw value, an environment name systemd rejects, ...). Thrown instead of writing a unit file
 * that systemd would read differently from what was meant.
 *
 * @example
 * ```ts
 * try {
 *   environmentAssignment("1BAD", "x");
 * } catch (e) {
 *   if (e instanceof UnitValueError) console.error(e.message);
 * }
 * ```
 */
export class UnitValueError extends Error {
  /** An error saying `message` (what cannot be represented, and where). */
  constructor(message: string) {
    super(message);
    this.name = "UnitValueError";
  }
}
