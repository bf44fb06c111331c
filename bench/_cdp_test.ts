import assert from "node:assert/strict";
import { type AllocationNode, allocationsByOwnFrame } from "./_cdp.ts";

const frame = (
  functionName: string,
  url: string,
  selfSize: number,
  ...children: AllocationNode[]
) => ({
  callFrame: { functionName, url, lineNumber: 9 },
  selfSize,
  children,
});

Deno.test("allocations go to the nearest systemk function, a library's included", () => {
  const dbus =
    "file:///root/.cache/node_modules/.deno/dbus-next@0.10.2/node_modules/dbus-next/lib/bus.js";
  const profile = {
    head: frame(
      "(root)",
      "",
      0,
      frame(
        "staleUnits",
        "file:///srv/systemk/src/pods/runtime.ts",
        100,
        frame("call", dbus, 4000, frame("marshall", dbus, 2000)),
      ),
      frame("onData", dbus, 700),
    ),
  };
  assert.deepEqual(allocationsByOwnFrame(profile), [
    ["staleUnits src/pods/runtime.ts:10", 6100],
    ["(no systemk frame) npm:dbus-next", 700],
  ]);
});
