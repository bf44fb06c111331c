import assert from "node:assert/strict";
import { podReferences } from "./references.ts";

Deno.test("references come from volumes, projected sources, env and envFrom, once each", () => {
  const refs = podReferences({
    spec: {
      volumes: [
        { name: "a", configMap: { name: "cm-vol" } },
        { name: "b", secret: { secretName: "sec-vol" } },
        {
          name: "c",
          projected: {
            sources: [{ configMap: { name: "cm-proj" } }, { secret: { name: "sec-proj" } }],
          },
        },
        { name: "d", emptyDir: {} },
        { name: "e", persistentVolumeClaim: { claimName: "data" } },
        { name: "f", persistentVolumeClaim: { claimName: "data", readOnly: true } },
      ],
      initContainers: [{
        name: "i",
        env: [{ name: "X", valueFrom: { secretKeyRef: { name: "sec-env", key: "k" } } }],
      }],
      containers: [{
        name: "c",
        env: [
          { name: "Y", valueFrom: { configMapKeyRef: { name: "cm-env", key: "k" } } },
          { name: "Z", valueFrom: { configMapKeyRef: { name: "cm-vol", key: "k" } } },
          { name: "L", value: "literal" },
        ],
        envFrom: [{ configMapRef: { name: "cm-from" } }, { secretRef: { name: "sec-from" } }],
      }],
    },
  });
  assert.deepEqual(refs.configMaps, ["cm-vol", "cm-proj", "cm-env", "cm-from"]);
  assert.deepEqual(refs.secrets, ["sec-vol", "sec-proj", "sec-env", "sec-from"]);
  assert.deepEqual(refs.persistentVolumeClaims, ["data"]);
});
