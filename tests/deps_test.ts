import * as k8s from "@kubernetes/client-node";
import dbus from "dbus-next";
import { parse } from "yaml";
import fc from "fast-check";
import assert from "node:assert/strict";

Deno.test("dependencies load", () => {
  assert.equal(typeof k8s.KubeConfig, "function");
  assert.equal(typeof dbus.systemBus, "function");
  assert.deepEqual(parse("a: 1"), { a: 1 });
  assert.equal(typeof fc.assert, "function");
});
