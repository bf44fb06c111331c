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
  return expandParts(input, lookup).join("");
}

/**
 * {@link expand}, where `lookup` may stand for a variable with something other than its text
 * (a reference to keep): the result's pieces in order, adjacent text joined.
 *
 * @example Usage
 * ```ts
 * const ref = { variable: "S" };
 * expandParts("a$(S)b", (n) => n === "S" ? ref : undefined); // ["a", ref, "b"]
 * ```
 */
export function expandParts<T>(
  input: string,
  lookup: (name: string) => string | T | undefined,
): (string | T)[] {
  const parts: (string | T)[] = [];
  let text = "";
  const add = (part: string | T) => {
    if (typeof part === "string") {
      text += part;
      return;
    }
    if (text !== "") parts.push(text);
    parts.push(part);
    text = "";
  };
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== "$" || cursor + 1 >= input.length) continue;
    add(input.slice(checkpoint, cursor));
    const next = input[cursor + 1];
    let advance = 1;
    if (next === "$") {
      add("$");
    } else if (next === "(") {
      const close = input.indexOf(")", cursor + 2);
      if (close === -1) {
        add("$(");
      } else {
        const name = input.slice(cursor + 2, close);
        add(lookup(name) ?? `$(${name})`);
        advance = close - cursor;
      }
    } else {
      add("$" + next);
    }
    cursor += advance;
    checkpoint = cursor + 1;
  }
  add(input.slice(checkpoint));
  if (text !== "" || parts.length === 0) parts.push(text);
  return parts;
}
