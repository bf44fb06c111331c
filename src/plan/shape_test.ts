import assert from "node:assert/strict";
import { planPod, PodError } from "./mod.ts";
import { shapeProblem } from "./_shape.ts";
import { inputFromManifest } from "../../tests/plan/_fixtures.ts";

Deno.test("shapeProblem: the first field of the wrong type, with its path", () => {
  const shape = { command: ["string"], env: [{ name: "string!" }] } as const;
  assert.equal(
    shapeProblem({ command: ["a"], env: [{ name: "A" }] }, shape, { path: "c" }),
    undefined,
  );
  assert.equal(shapeProblem({}, shape, { path: "c" }), undefined);
  assert.equal(
    shapeProblem({ command: "sh" }, shape, { path: "c" }),
    "c.command must be a list, not a string",
  );
  assert.equal(
    shapeProblem({ command: ["a", 1] }, shape, { path: "c" }),
    "c.command[1] must be a string, not a number",
  );
  assert.equal(shapeProblem({ env: [{}] }, shape, { path: "c" }), "c.env[0].name is missing");
  assert.equal(shapeProblem({ env: null }, shape, { path: "c" }), "c.env must be a list, not null");
  assert.equal(
    shapeProblem({ env: { A: "b" } }, shape, { path: "c" }),
    "c.env must be a list, not an object",
  );
});

Deno.test("plan: manifest mistakes of type are PodErrors naming the field", () => {
  const pod = (container: string) => `
kind: Pod
metadata: {name: p, uid: u-1}
spec:
  containers: [${container}]`;
  const cases: [string, string][] = [
    [
      "{name: c, image: /bin/sh, command: /bin/sh -c x}",
      "pod.spec.containers[0].command must be a list, not a string",
    ],
    [
      "{name: c, image: /bin/sh, command: [/bin/sh], env: {A: b}}",
      "pod.spec.containers[0].env must be a list, not an object",
    ],
    [
      "{name: c, image: /bin/sh, command: [/bin/sh], env: [{value: x}]}",
      "pod.spec.containers[0].env[0].name is missing",
    ],
    [
      "{name: c, image: /bin/sh, command: [/bin/sh], workingDir: 7}",
      "pod.spec.containers[0].workingDir must be a string, not a number",
    ],
  ];
  for (const [container, message] of cases) {
    assert.throws(
      () => planPod(inputFromManifest(pod(container))),
      (e) => e instanceof PodError && e.message === `pod default/p: ${message}; fix the manifest`,
      container,
    );
  }
  const secret = `
kind: Pod
metadata: {name: p, uid: u-1}
spec:
  containers: [{name: c, image: /bin/sh, command: [/bin/sh], env: [{name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}]}]
---
kind: Secret
metadata: {name: s}
data: {k: 12}`;
  assert.throws(
    () => planPod(inputFromManifest(secret)),
    /secret "s"\.data\["k"\] must be a string, not a number; fix the secret/,
  );
});
