import assert from "node:assert/strict";
import { parseSystemdTime } from "./_env.ts";

Deno.test("systemd us+utc timestamps keep their microseconds", () => {
  assert.equal(
    parseSystemdTime("Wed 2026-11-25 11:30:00.123456 UTC"),
    Date.parse("2026-11-25T11:30:00Z") + 123.456,
  );
  assert.equal(parseSystemdTime(""), undefined);
});
