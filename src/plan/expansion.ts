/**
 * `$(VAR)` references in env values, `command`, `args` and `subPathExpr`, expanded with the
 * exact rules of Kubernetes' `third_party/forked/golang/expansion`: `$$` is an escaped `$`,
 * `$(NAME)` is replaced when NAME is known and left verbatim otherwise, an unterminated
 * `$(` and any other `$x` are copied as they are.
 *
 * @module
 */

/**
 * Expands `$(VAR)` references in `input` using `lookup` (undefined = unknown variable).
 *
 * @example Usage
 * ```ts
 * expand("$(A)-$$(A)-$(B)", (n) => n === "A" ? "x" : undefined); // "x-$(A)-$(B)"
 * ```
 */
export function expand(input: string, lookup: (name: string) => string | undefined): string {
  let out = "";
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== "$" || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const next = input[cursor + 1];
    let advance = 1;
    if (next === "$") {
      out += "$";
    } else if (next === "(") {
      const close = input.indexOf(")", cursor + 2);
      if (close === -1) {
        out += "$(";
      } else {
        const name = input.slice(cursor + 2, close);
        out += lookup(name) ?? `$(${name})`;
        advance = close - cursor;
      }
    } else {
      out += "$" + next;
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}
