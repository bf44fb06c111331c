import assert from "node:assert/strict";
import fc from "fast-check";
import { expand } from "./expansion.ts";

const vars = new Map([
  ["VAR_A", "A"],
  ["VAR_B", "B"],
  ["VAR_C", "C"],
  ["VAR_REF", "$(VAR_A)"],
  ["VAR_EMPTY", ""],
]);
const lookup = (name: string) => vars.get(name);

Deno.test("expand: Kubernetes' $(VAR) rules (cases of expansion/expand_test.go)", () => {
  const table: [string, string][] = [
    ["$(VAR_A)", "A"],
    ["___$(VAR_B)___", "___B___"],
    ["$(VAR_A)-$(VAR_A)", "A-A"],
    ["$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"],
    ["$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"],
    ["$$(VAR_A)", "$(VAR_A)"],
    ["$$$(VAR_A)", "$A"],
    ["$$$$(VAR_A)", "$$(VAR_A)"],
    ["$$$$$$(BIG_MONEY)", "$$$(BIG_MONEY)"],
    ["$(VAR_DNE)", "$(VAR_DNE)"],
    ["$(VAR_EMPTY)", ""],
    ["$(VAR_REF)", "$(VAR_A)"], // no recursive expansion
    ["$(", "$("],
    ["$(VAR_A", "$(VAR_A"],
    ["$", "$"],
    ["$$", "$"],
    ["$)", "$)"],
    ["$()", "$()"],
    ["$VAR_A", "$VAR_A"],
    ["${VAR_A}", "${VAR_A}"],
    ["f000-$$VAR_A", "f000-$VAR_A"],
    ["$(VAR_A)$", "A$"],
    ["$(foo$$var)", "$(foo$$var)"],
    ["$(VAR_$(VAR_A))", "$(VAR_$(VAR_A))"],
    ["$(VAR_A)ü$x", "Aü$x"],
    ["", ""],
  ];
  for (const [input, want] of table) assert.equal(expand(input, lookup), want, input);
});

Deno.test("expand: text without '$' is unchanged; unknown references survive (property)", () => {
  fc.assert(
    fc.property(fc.string().filter((s) => !s.includes("$")), (s) => {
      assert.equal(expand(s, lookup), s);
      assert.equal(
        expand(`$(${s.replaceAll(")", "")})`, () => undefined),
        `$(${s.replaceAll(")", "")})`,
      );
    }),
  );
});

Deno.test("expand: $$ always yields one literal $ (property)", () => {
  fc.assert(
    fc.property(fc.string().filter((s) => !s.includes("$")), (s) => {
      assert.equal(expand(`$$(${s})`, () => "x"), `$(${s})`);
    }),
  );
});
