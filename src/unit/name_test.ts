import assert from "node:assert/strict";
import fc from "fast-check";
import { createHash } from "node:crypto";
import { UnitValueError } from "./errors.ts";
import { isPodSliceName, isValidUnitName, podSliceName, unitName } from "./name.ts";

const label = fc.oneof(
  fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/),
  // Long labels, so that many names need shortening.
  fc.stringMatching(/^[a-z0-9][-a-z0-9]{50,61}[a-z0-9]$/),
);
const subdomain = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join(".")).filter(
  (s) => s.length <= 253,
);

Deno.test("unitName: the seed's scheme for ordinary names", () => {
  assert.equal(
    unitName({ namespace: "default", name: "web-0" }, "nginx"),
    "systemk.default.web-0.nginx.service",
  );
  assert.equal(
    unitName({ namespace: "kube-system", name: "a.b.c" }, "c1"),
    "systemk.kube-system.a.b.c.c1.service",
  );
});

Deno.test("unitName: too long names are shortened with a hash of the whole identity", () => {
  const ns = "n".repeat(63);
  const pod = ["p".repeat(63), "q".repeat(63), "r".repeat(63), "s".repeat(61)].join(".");
  const name = unitName({ namespace: ns, name: pod }, "c".repeat(63));
  assert.equal(name.length, 255);
  assert.ok(isValidUnitName(name));
  const hash = createHash("sha256").update(`${ns}/${pod}/${"c".repeat(63)}`).digest("hex");
  assert.ok(name.endsWith(`_${hash.slice(0, 10)}.service`), name);
  assert.ok(name.startsWith(`systemk.${ns}.ppp`));
  // Same truncated prefix, other container: another name.
  assert.notEqual(unitName({ namespace: ns, name: pod }, "c".repeat(62) + "d"), name);
  assert.equal(unitName({ namespace: ns, name: pod }, "c".repeat(63)), name);
});

Deno.test("unitName: refuses what is not a Kubernetes name", () => {
  const refused: Array<[string, string, string]> = [
    ["", "p", "c"],
    ["Default", "p", "c"],
    ["a.b", "p", "c"],
    ["n".repeat(64), "p", "c"],
    ["ns", "", "c"],
    ["ns", "-p", "c"],
    ["ns", "p..q", "c"],
    ["ns", "p_q", "c"],
    ["ns", "p/q", "c"],
    ["ns", "p".repeat(254), "c"],
    ["ns", "p", "c.d"],
    ["ns", "p", "c-"],
    ["ns", "p", "ü"],
  ];
  for (const [ns, pod, container] of refused) {
    assert.throws(
      () => unitName({ namespace: ns, name: pod }, container),
      UnitValueError,
      `${ns}/${pod}/${container}`,
    );
  }
});

Deno.test("property: unit names are valid for systemd, deterministic and distinct", () => {
  const seen = new Map<string, string>();
  let shortened = 0;
  fc.assert(
    fc.property(label, subdomain, label, (ns, pod, container) => {
      const name = unitName({ namespace: ns, name: pod }, container);
      assert.ok(isValidUnitName(name), name);
      assert.ok(new TextEncoder().encode(name).length <= 255);
      const identity = `${ns}/${pod}/${container}`;
      const previous = seen.get(name);
      assert.ok(previous === undefined || previous === identity, `${previous} vs ${identity}`);
      seen.set(name, identity);
      if (name.includes("_")) shortened++;
    }),
    { numRuns: 3000 },
  );
  console.log(`  ${seen.size} distinct names, ${shortened} of them shortened`);
});

Deno.test("isValidUnitName: systemd's rules", () => {
  assert.ok(isValidUnitName("a.service"));
  assert.ok(isValidUnitName("a-b_c:d\\x2d.socket"));
  assert.ok(!isValidUnitName(".service"));
  assert.ok(!isValidUnitName("a"));
  assert.ok(!isValidUnitName("a.bogus"));
  assert.ok(!isValidUnitName("a b.service"));
  assert.ok(!isValidUnitName("a@b.service"));
  assert.ok(!isValidUnitName("a".repeat(248) + ".service"));
});

Deno.test("podSliceName: a child of systemk.slice, named by the UID as the kubelet does", () => {
  const name = podSliceName("0b0a7e4c-1d2e-4f3a-9b8c-7d6e5f4a3b2c");
  assert.equal(name, "systemk-pod0b0a7e4c_1d2e_4f3a_9b8c_7d6e5f4a3b2c.slice");
  // One dash, after "systemk": systemd reads the name as systemk.slice's child.
  assert.equal(name.split("-").length, 2);
  assert.ok(isValidUnitName(name) && isPodSliceName(name));
  const long = "u".repeat(300);
  const hash = createHash("sha256").update(long).digest("hex").slice(0, 32);
  assert.equal(podSliceName(long), `systemk-pod${hash}.slice`);
  for (const uid of ["", "a/b", "a b", "ü"]) assert.throws(() => podSliceName(uid), UnitValueError);
  for (
    const other of ["systemk.slice", "systemk-pod-a.slice", "systemk.a.b.c.service", "x.slice"]
  ) {
    assert.ok(!isPodSliceName(other), other);
  }
});
