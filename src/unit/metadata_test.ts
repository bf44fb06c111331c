import assert from "node:assert/strict";
import fc from "fast-check";
import { parseUnit, serializeUnit } from "./codec.ts";
import {
  type KubernetesMetadata,
  metadataSection,
  podMetadataSection,
  readMetadata,
  readPodMetadata,
} from "./metadata.ts";
import type { UnitFile } from "./types.ts";
import { hostileString } from "./_test_arbitraries.ts";

const example: KubernetesMetadata = {
  namespace: "default",
  podName: "web-0",
  podUID: "6f1c2a9e-0b8e-4d43-9d55-0e8c7a3f3a10",
  containerName: "nginx",
  init: false,
  image: "nginx",
  nodeName: "node-1",
  containerHash: "0123abcd",
  index: 2,
};

const unitWith = (meta: KubernetesMetadata): UnitFile => ({
  header: [],
  sections: [
    { name: "Service", lines: [{ kind: "directive", key: "ExecStart", value: '":/bin/true"' }] },
    metadataSection(meta),
  ],
});

Deno.test("metadataSection: keys and JSON-literal values", () => {
  assert.equal(
    serializeUnit({ header: [], sections: [metadataSection(example)] }),
    [
      "[X-Kubernetes]",
      'Namespace="default"',
      'PodName="web-0"',
      'PodUID="6f1c2a9e-0b8e-4d43-9d55-0e8c7a3f3a10"',
      'ContainerName="nginx"',
      "InitContainer=no",
      'Image="nginx"',
      'NodeName="node-1"',
      'ContainerHash="0123abcd"',
      "Index=2",
      "",
    ].join("\n"),
  );
  assert.throws(() => metadataSection({ ...example, index: -1 }), RangeError);
  assert.throws(() => metadataSection({ ...example, index: 1.5 }), RangeError);
});

Deno.test("property: any metadata round-trips through a unit file", () => {
  const meta = fc.record({
    namespace: hostileString,
    podName: hostileString,
    podUID: hostileString,
    containerName: hostileString,
    init: fc.boolean(),
    image: hostileString,
    nodeName: hostileString,
    containerHash: hostileString,
    index: fc.nat(),
    resources: hostileString,
  }, {
    noNullPrototype: true,
    requiredKeys: [
      "namespace",
      "podName",
      "podUID",
      "containerName",
      "init",
      "image",
      "nodeName",
      "containerHash",
      "index",
    ],
  });
  fc.assert(
    fc.property(meta, (m) => {
      const unit = parseUnit(serializeUnit(unitWith(m)));
      assert.deepEqual(readMetadata(unit), m);
      // Nothing in the values leaked into other sections or lines.
      assert.equal(unit.sections.length, 2);
      assert.equal(unit.sections[1].lines.length, m.resources === undefined ? 9 : 10);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("readMetadata: undefined when missing or malformed; the last assignment wins", () => {
  const text = serializeUnit(unitWith(example));
  assert.deepEqual(readMetadata(parseUnit(text)), example);
  assert.deepEqual(readMetadata(parseUnit(text + 'Image="other"\n'))?.image, "other");
  assert.equal(readMetadata(parseUnit("[Service]\nExecStart=/bin/true\n")), undefined);
  const broken = [
    ['Namespace="default"', ""],
    ['Namespace="default"', "Namespace=default"],
    ['Namespace="default"', "Namespace=1"],
    ['Image="nginx"', 'Image="nginx'],
    ["InitContainer=no", "InitContainer=maybe"],
    ["Index=2", "Index=-2"],
    ["Index=2", "Index=02"],
    ["Index=2", "Index=99999999999999999999"],
    ["Index=2", "Index=2\nResources=1"],
  ];
  for (const [from, to] of broken) {
    assert.ok(text.includes(from));
    assert.equal(readMetadata(parseUnit(text.replace(from, to))), undefined, to);
  }
});

Deno.test("podMetadataSection: a slice's identity round-trips; a container's is not a slice's", () => {
  const pod = { namespace: "default", podName: "web-0", podUID: "6f1c", nodeName: "node-1" };
  const text = serializeUnit({
    header: [],
    sections: [{ name: "Slice", lines: [] }, podMetadataSection(pod)],
  });
  assert.equal(
    text,
    '[Slice]\n\n[X-Kubernetes]\nNamespace="default"\nPodName="web-0"\nPodUID="6f1c"\n' +
      'NodeName="node-1"\n',
  );
  assert.deepEqual(readPodMetadata(parseUnit(text)), pod);
  // A slice is never taken for a container (no ContainerName, InitContainer, Index).
  assert.equal(readMetadata(parseUnit(text)), undefined);
  assert.equal(readPodMetadata(parseUnit(text.replace('PodUID="6f1c"', "PodUID=6f1c"))), undefined);
  assert.equal(readPodMetadata(parseUnit("[Slice]\n")), undefined);
});
