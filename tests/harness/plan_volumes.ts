/**
 * The volume applier's job, done minimally for tests that run planned units in a booted test
 * systemd: a plan's volume entries written into the test system's filesystem.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { PodPlan } from "../../src/plan/mod.ts";
import type { TestSystemd } from "./systemd.ts";

/** Writes `plan`'s volume entries into the test system `sd` (mounting tmpfs ones there). */
export async function applyVolumes(sd: TestSystemd, plan: PodPlan): Promise<void> {
  for (const v of plan.volumes) {
    const path = sd.root + v.path;
    if (v.kind === "dir") await Deno.mkdir(path, { recursive: true });
    if (v.kind === "file") await Deno.writeFile(path, v.content);
    if (v.kind === "tmpfs") {
      await Deno.mkdir(path, { recursive: true });
      const r = await sd.exec(["mount", "-t", "tmpfs", "-o", `size=${v.sizeBytes}`, "t", v.path]);
      assert.equal(r.code, 0, r.stderr);
    }
    await Deno.chmod(path, v.mode);
    await Deno.chown(path, v.uid, v.gid);
  }
}
