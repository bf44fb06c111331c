import assert from "node:assert/strict";
import fc from "fast-check";
import { UNIT_PATH_PREFIX, unitNameFromObjectPath, unitObjectPath } from "./_label.ts";

Deno.test("unit object paths escape like systemd's bus_label_escape", () => {
  // Paths as systemd 252 reports them (busctl tree org.freedesktop.systemd1).
  assert.equal(unitObjectPath("dbus.service"), `${UNIT_PATH_PREFIX}dbus_2eservice`);
  assert.equal(unitObjectPath("getty@tty1.service"), `${UNIT_PATH_PREFIX}getty_40tty1_2eservice`);
  assert.equal(unitObjectPath("-.mount"), `${UNIT_PATH_PREFIX}_2d_2emount`);
  assert.equal(unitObjectPath("a_b.service"), `${UNIT_PATH_PREFIX}a_5fb_2eservice`);
  assert.equal(unitObjectPath("1x.service"), `${UNIT_PATH_PREFIX}_31x_2eservice`);
  assert.equal(unitObjectPath(""), `${UNIT_PATH_PREFIX}_`);
});

Deno.test("unit names come back from their object paths", () => {
  fc.assert(fc.property(fc.string({ unit: "grapheme" }), (name) => {
    assert.equal(unitNameFromObjectPath(unitObjectPath(name)), name);
  }));
});

Deno.test("paths that are no unit labels are refused", () => {
  assert.equal(unitNameFromObjectPath("/org/freedesktop/systemd1/job/5"), undefined);
  assert.equal(unitNameFromObjectPath(`${UNIT_PATH_PREFIX}a_zz`), undefined);
  assert.equal(unitNameFromObjectPath(`${UNIT_PATH_PREFIX}a_2`), undefined);
  assert.equal(unitNameFromObjectPath(`${UNIT_PATH_PREFIX}a.b`), undefined);
});
