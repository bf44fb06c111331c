import assert from "node:assert/strict";
import { countDbus, perPod } from "./_dbus.ts";

const sample =
  `signal time=1.0 sender=org.freedesktop.DBus -> destination=:1.9 serial=2 path=/org/freedesktop/DBus; interface=org.freedesktop.DBus; member=NameAcquired
method call time=1.1 sender=:1.9 -> destination=org.freedesktop.systemd1 serial=7 path=/org/freedesktop/systemd1; interface=org.freedesktop.systemd1.Manager; member=StartUnit
   string "systemk.default.p.c.service"
method call time=1.2 sender=:1.9 -> destination=org.freedesktop.systemd1 serial=8 path=/org/freedesktop/systemd1/unit/systemk_2edefault_2ep_2ec_2eservice; interface=org.freedesktop.DBus.Properties; member=GetAll
method call time=1.2 sender=:1.4 -> destination=org.freedesktop.systemd1 serial=3 path=/org/freedesktop/systemd1; interface=org.freedesktop.systemd1.Manager; member=ListUnits
signal time=1.3 sender=:1.1 -> destination=(null destination) serial=90 path=/org/freedesktop/systemd1/unit/systemk_2edefault_2ep_2ec_2eservice; interface=org.freedesktop.DBus.Properties; member=PropertiesChanged
   string "org.freedesktop.systemd1.Service"
signal time=1.3 sender=:1.1 -> destination=(null destination) serial=91 path=/org/freedesktop/systemd1/unit/session_2escope; interface=org.freedesktop.DBus.Properties; member=PropertiesChanged
   string "org.freedesktop.systemd1.Unit"
signal time=1.4 sender=:1.1 -> destination=(null destination) serial=92 path=/org/freedesktop/systemd1; interface=org.freedesktop.systemd1.Manager; member=JobRemoved
error time=1.5 sender=:1.1 -> destination=:1.9 error_name=org.freedesktop.systemd1.NoSuchUnit reply_serial=9
`;

Deno.test("calls of the agent, signals by unit owner, errors to the agent", () => {
  const c = countDbus(sample);
  assert.deepEqual(c.calls, { "Manager.StartUnit": 1, "Properties.GetAll": 1 });
  assert.deepEqual(c.signals, {
    "PropertiesChanged Service (systemk unit)": 1,
    "PropertiesChanged Unit (other unit)": 1,
    "JobRemoved (manager)": 1,
  });
  assert.deepEqual(c.errors, { "org.freedesktop.systemd1.NoSuchUnit": 1 });
  assert.deepEqual(perPod({ a: 3, b: 10 }, 4), { b: 2.5, a: 0.8 });
});
