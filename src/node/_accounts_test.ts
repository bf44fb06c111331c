import assert from "node:assert/strict";
import { AccountFile } from "./_accounts.ts";
import { parsePasswd } from "./local.ts";

Deno.test("a user added to the file after start is found without a restart", async () => {
  const dir = await Deno.makeTempDir({ prefix: "systemk-accounts-" });
  try {
    const path = `${dir}/passwd`;
    await Deno.writeTextFile(path, "root:x:0:0:root:/root:/bin/sh\n");
    const passwd = new AccountFile(path, parsePasswd);
    const byName = (name: string) => passwd.lookup((users) => users.find((u) => u.name === name));
    assert.equal(byName("prometheus"), undefined);
    // A package's postinst runs useradd: the file changes (a later mtime).
    await Deno.writeTextFile(path, "prometheus:x:107:113::/var/lib/prometheus:/bin/false\n", {
      append: true,
    });
    await Deno.utime(path, new Date(), new Date(Date.now() + 5_000));
    assert.deepEqual(byName("prometheus"), { name: "prometheus", uid: 107, gid: 113 });
    assert.equal(byName("root")?.uid, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
