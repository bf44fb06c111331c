import assert from "node:assert/strict";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import { computeQOSClass, type QOSClass } from "./qos.ts";

type Resources = V1Container["resources"];
const c = (name: string, resources?: Resources): V1Container => ({ name, resources });
const guaranteedResources = {
  requests: { cpu: "1", memory: "1Gi" },
  limits: { cpu: "1", memory: "1Gi" },
};

const cases: { name: string; pod: V1Pod; want: QOSClass }[] = [
  { name: "no resources", pod: { spec: { containers: [c("a")] } }, want: "BestEffort" },
  {
    name: "zero quantities only",
    pod: { spec: { containers: [c("a", { requests: { cpu: "0" }, limits: { memory: "0" } })] } },
    want: "BestEffort",
  },
  {
    name: "only resources outside cpu/memory",
    pod: { spec: { containers: [c("a", { limits: { "ephemeral-storage": "1Gi" } })] } },
    want: "BestEffort",
  },
  {
    name: "requests only",
    pod: { spec: { containers: [c("a", { requests: { cpu: "100m" } })] } },
    want: "Burstable",
  },
  {
    name: "limits above requests",
    pod: {
      spec: {
        containers: [
          c("a", { requests: { cpu: "1", memory: "1Gi" }, limits: { cpu: "2", memory: "1Gi" } }),
        ],
      },
    },
    want: "Burstable",
  },
  {
    name: "only a cpu limit",
    pod: { spec: { containers: [c("a", { limits: { cpu: "1" } })] } },
    want: "Burstable",
  },
  {
    name: "equal requests and limits",
    pod: { spec: { containers: [c("a", guaranteedResources)] } },
    want: "Guaranteed",
  },
  {
    name: "equal in different notation (1 = 1000m, 1Gi = 1024Mi)",
    pod: {
      spec: {
        containers: [
          c("a", {
            requests: { cpu: "1000m", memory: "1024Mi" },
            limits: { cpu: "1", memory: "1Gi" },
          }),
        ],
      },
    },
    want: "Guaranteed",
  },
  {
    name: "limits only: requests default to limits",
    pod: { spec: { containers: [c("a", { limits: { cpu: "500m", memory: "64Mi" } })] } },
    want: "Guaranteed",
  },
  {
    name: "one of two containers without limits",
    pod: { spec: { containers: [c("a", guaranteedResources), c("b")] } },
    want: "Burstable",
  },
  {
    name: "init container without limits counts",
    pod: { spec: { containers: [c("a", guaranteedResources)], initContainers: [c("init")] } },
    want: "Burstable",
  },
  {
    name: "init and app containers all guaranteed",
    pod: {
      spec: {
        containers: [c("a", guaranteedResources)],
        initContainers: [c("init", guaranteedResources)],
      },
    },
    want: "Guaranteed",
  },
  {
    name: "pod-level resources decide over containers",
    pod: {
      spec: {
        resources: { limits: { cpu: "2", memory: "2Gi" } },
        containers: [c("a", { requests: { cpu: "100m" } })],
      },
    },
    want: "Guaranteed",
  },
  {
    name: "pod-level requests without limits",
    pod: {
      spec: { resources: { requests: { cpu: "1" } }, containers: [c("a", guaranteedResources)] },
    },
    want: "Burstable",
  },
  {
    name: "unparsable quantity is ignored",
    pod: { spec: { containers: [c("a", { requests: { cpu: "lots" } })] } },
    want: "BestEffort",
  },
];

for (const { name, pod, want } of cases) {
  Deno.test(`computeQOSClass: ${name} → ${want}`, () => {
    assert.equal(computeQOSClass(pod), want);
  });
}
