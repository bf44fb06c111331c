import assert from "node:assert/strict";
import { completeUnitProperties } from "../unit/properties.ts";
import {
  isTrackedProperty,
  SERVICE_INTERFACE,
  UNIT_INTERFACE,
  unitPropertiesFrom,
} from "./_properties.ts";

Deno.test("unit interface values decode, 64-bit ones from bigint", () => {
  const props = unitPropertiesFrom(UNIT_INTERFACE, {
    ActiveState: "failed",
    SubState: "failed",
    LoadState: "loaded",
    ActiveEnterTimestamp: 1795604253366507n,
    InactiveEnterTimestamp: 0n,
    InvocationID: new Uint8Array([0x3a, 0x2a, 0xd6, 0x00, 0x0f, ...new Array(11).fill(0xff)]),
    Description: "ignored",
  });
  assert.deepEqual(props, {
    ActiveState: "failed",
    SubState: "failed",
    LoadState: "loaded",
    ActiveEnterTimestamp: 1795604253366507,
    InactiveEnterTimestamp: 0,
    InvocationID: "3a2ad6000f" + "ff".repeat(11),
  });
});

Deno.test("service interface values decode; unset accounting is undefined; others ignored", () => {
  const props = unitPropertiesFrom(SERVICE_INTERFACE, {
    Result: "exit-code",
    ExecMainStatus: 3,
    ExecMainCode: 1,
    MainPID: 0,
    NRestarts: 2,
    MemoryCurrent: 2n ** 64n - 1n,
    CPUUsageNSec: 12345678n,
  });
  assert.deepEqual(props, {
    Result: "exit-code",
    ExecMainStatus: 3,
    ExecMainCode: 1,
    MainPID: 0,
    MemoryCurrent: undefined,
    CPUUsageNSec: 12345678,
  });
  assert.equal(Object.hasOwn(props, "MemoryCurrent"), true);
});

Deno.test("values of another interface or of the wrong type are ignored", () => {
  assert.deepEqual(unitPropertiesFrom("org.freedesktop.systemd1.Socket", { Result: "x" }), {});
  assert.deepEqual(unitPropertiesFrom(UNIT_INTERFACE, { ActiveState: 5, InvocationID: "x" }), {});
  // Service properties are not read from the Unit interface, nor the other way round.
  assert.deepEqual(unitPropertiesFrom(UNIT_INTERFACE, { Result: "success" }), {});
  assert.deepEqual(unitPropertiesFrom(SERVICE_INTERFACE, { ActiveState: "active" }), {});
  assert.equal(isTrackedProperty(SERVICE_INTERFACE, "ExecMainStatus"), true);
  assert.equal(isTrackedProperty(UNIT_INTERFACE, "ExecMainStatus"), false);
  assert.equal(isTrackedProperty(UNIT_INTERFACE, "toString"), false);
});

Deno.test("a snapshot is completed with never-started values", () => {
  const full = completeUnitProperties({ ActiveState: "active", MainPID: 7 });
  assert.equal(full.ActiveState, "active");
  assert.equal(full.MainPID, 7);
  assert.equal(full.Result, "");
  assert.equal(full.InvocationID, "");
  assert.equal(full.MemoryCurrent, undefined);
});
