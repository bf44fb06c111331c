import assert from "node:assert/strict";
import { PERMISSION_FLAGS } from "../scripts/permissions.ts";

Deno.test("deno task start runs main.ts with exactly the shipped permission set", async () => {
  const config = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  assert.equal(config.tasks.start, `deno run ${PERMISSION_FLAGS.join(" ")} main.ts`);
  assert.ok(!PERMISSION_FLAGS.includes("--allow-all") && !PERMISSION_FLAGS.includes("-A"));
});
