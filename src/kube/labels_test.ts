import assert from "node:assert/strict";
import {
  formatTaint,
  isKubeletLabel,
  isKubernetesLabel,
  labelValueProblems,
  NodeFlagError,
  parseNodeLabels,
  parseTaints,
  qualifiedNameProblems,
} from "./labels.ts";

Deno.test("isKubeletLabel: NodeRestriction's allowed prefixes and well-known labels", () => {
  for (
    const key of [
      "node.kubernetes.io/pool",
      "pool.node.kubernetes.io/size",
      "kubelet.kubernetes.io/x",
      "topology.kubernetes.io/zone",
      "kubernetes.io/hostname",
      "beta.kubernetes.io/instance-type",
    ]
  ) assert.equal(isKubeletLabel(key), true, key);
  for (
    const key of [
      "node-role.kubernetes.io/worker",
      "node-restriction.kubernetes.io/pci",
      "kubernetes.io/role",
      "app.kubernetes.io/name",
      "example.k8s.io/x",
      // A suffix of an allowed namespace is not a subdomain of it.
      "evilnode.kubernetes.io/x",
    ]
  ) assert.equal(isKubeletLabel(key), false, key);
  assert.equal(isKubernetesLabel("tier"), false);
  assert.equal(isKubernetesLabel("example.com/tier"), false);
  assert.equal(isKubernetesLabel("k8s.io/x"), true);
  assert.equal(isKubernetesLabel("app.kubernetes.io/name"), true);
});

Deno.test("qualifiedNameProblems and labelValueProblems: Kubernetes' label syntax", () => {
  assert.deepEqual(qualifiedNameProblems("tier"), []);
  assert.deepEqual(qualifiedNameProblems("example.com/Tier_1.a-b"), []);
  assert.match(qualifiedNameProblems("/tier")[0], /prefix part must be non-empty/);
  assert.match(qualifiedNameProblems("Example.com/tier")[0], /DNS-1123 subdomain/);
  assert.match(qualifiedNameProblems("a/b/c")[0], /at most one '\/'/);
  assert.match(qualifiedNameProblems("example.com/")[0], /name part must be non-empty/);
  assert.match(qualifiedNameProblems("x".repeat(64))[0], /no more than 63/);
  assert.match(qualifiedNameProblems("-tier")[0], /alphanumeric/);
  assert.deepEqual(labelValueProblems(""), []);
  assert.deepEqual(labelValueProblems("a.b_c-1"), []);
  assert.match(labelValueProblems("a b")[0], /alphanumeric/);
  assert.match(labelValueProblems("v".repeat(64))[0], /no more than 63/);
});

Deno.test("parseNodeLabels: key=value pairs, spaces trimmed, empty for none", () => {
  assert.deepEqual(parseNodeLabels(undefined), {});
  assert.deepEqual(parseNodeLabels(""), {});
  assert.deepEqual(parseNodeLabels(" tier=edge , empty=, node.kubernetes.io/pool=a,"), {
    tier: "edge",
    empty: "",
    "node.kubernetes.io/pool": "a",
  });
  assert.throws(() => parseNodeLabels("tier"), /malformed pair "tier", expect key=value/);
});

Deno.test("parseNodeLabels refuses what the kubelet refuses at startup, naming label and rule", () => {
  assert.throws(
    () => parseNodeLabels("tier=a,node-role.kubernetes.io/worker=,app.kubernetes.io/name=x"),
    (e: Error) => {
      assert.ok(e instanceof NodeFlagError);
      assert.match(
        e.message,
        /^unknown 'kubernetes\.io' or 'k8s\.io' labels specified with --node-labels: \[app\.kubernetes\.io\/name node-role\.kubernetes\.io\/worker\]\n/,
      );
      assert.match(e.message, /allowed prefix \(kubelet\.kubernetes\.io, node\.kubernetes\.io\)/);
      assert.match(e.message, /specifically allowed set \(.*kubernetes\.io\/hostname/);
      assert.match(e.message, /NodeRestriction/);
      return true;
    },
  );
  assert.throws(
    () => parseNodeLabels("Bad_Prefix.io/x=1,ok=a b"),
    /invalid node labels: 'Bad_Prefix\.io\/x' - key prefix part .*; 'ok' - value "a b" must be empty or/,
  );
});

Deno.test("parseTaints: key=value:Effect and key:Effect, as the kubelet and kubectl taint", () => {
  assert.deepEqual(parseTaints(undefined), []);
  assert.deepEqual(parseTaints("dedicated=edge:NoSchedule, gpu:PreferNoSchedule"), [
    { key: "dedicated", value: "edge", effect: "NoSchedule" },
    { key: "gpu", effect: "PreferNoSchedule" },
  ]);
  // The same key with another effect is another taint.
  assert.equal(parseTaints("a=1:NoSchedule,a=1:NoExecute").length, 2);
  const refusals: [string, RegExp][] = [
    ["dedicated=edge", /invalid taint spec "dedicated=edge": expect key=value:Effect/],
    ["a=b:NoSchedule:NoExecute", /expect key=value:Effect/],
    ["a=b:NoSchedul", /unsupported taint effect "NoSchedul"/],
    ["a=b=c:NoSchedule", /more than one '='/],
    ["=b:NoSchedule", /key name part must be non-empty/],
    ["a=b c:NoSchedule", /value must be empty or/],
    [
      "a=1:NoSchedule,a=2:NoSchedule",
      /duplicated taints with the same key and effect: a:NoSchedule/,
    ],
  ];
  for (const [spec, message] of refusals) {
    assert.throws(() => parseTaints(spec), NodeFlagError, spec);
    assert.throws(() => parseTaints(spec), message, spec);
  }
});

Deno.test("formatTaint writes kubectl taint's syntax", () => {
  assert.equal(formatTaint({ key: "a", value: "1", effect: "NoSchedule" }), "a=1:NoSchedule");
  assert.equal(formatTaint({ key: "a", effect: "NoExecute" }), "a:NoExecute");
});
