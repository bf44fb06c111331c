import assert from "node:assert/strict";
import { configureLogging, log, podLogger } from "./mod.ts";

Deno.test("log: --log-level filters, text names non-info levels, braces stay as written", () => {
  const lines: string[] = [];
  try {
    configureLogging({ level: "info", format: "text", write: (line) => lines.push(line) });
    log.debug("not shown at info");
    log.info('watching pods; {"a":1} {x}');
    log.warn("retrying");
    podLogger("default/web").debug("not shown either");
    configureLogging({ level: "debug", format: "text", write: (line) => lines.push(line) });
    podLogger("default/web").debug("units unchanged");
    assert.deepEqual(lines, [
      'systemk: watching pods; {"a":1} {x}',
      "systemk: warning: retrying",
      "systemk: debug: units unchanged",
    ]);
  } finally {
    configureLogging({ level: "info", format: "text" });
  }
});

Deno.test("log: --log-format json writes one object per line with the pod as a field", () => {
  const lines: string[] = [];
  try {
    configureLogging({ level: "debug", format: "json", write: (line) => lines.push(line) });
    podLogger("default/web").debug("starting 2 unit(s)");
    log.error("systemd unreachable");
    const [first, second] = lines.map((line) => JSON.parse(line));
    assert.equal(lines.length, 2);
    assert.ok(!Number.isNaN(Date.parse(first.ts)));
    assert.deepEqual({ ...first, ts: undefined }, {
      ts: undefined,
      level: "debug",
      logger: "systemk.pod",
      msg: "starting 2 unit(s)",
      pod: "default/web",
    });
    assert.equal(second.level, "error");
    assert.equal(second.msg, "systemd unreachable");
  } finally {
    configureLogging({ level: "info", format: "text" });
  }
});
