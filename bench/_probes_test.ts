import assert from "node:assert/strict";
import { startProbeTarget } from "./_probes.ts";

Deno.test("probe target: answers HTTP with 200, counts every connection", async () => {
  const target = startProbeTarget();
  try {
    const res = await fetch(`http://127.0.0.1:${target.port}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(await res.text(), "ok");
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: target.port });
    tcp.close();
    const deadline = Date.now() + 5000;
    while (target.count() < 2 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(target.count(), 2);
  } finally {
    target.close();
  }
});
