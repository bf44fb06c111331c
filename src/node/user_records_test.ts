import assert from "node:assert/strict";
import { podIdsOfUnit, UserRecords } from "./user_records.ts";

async function withDir(fn: (dir: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "systemk-userdb-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(dir)) {
    out.push(e.isSymlink ? `${e.name} -> ${await Deno.readLink(`${dir}/${e.name}`)}` : e.name);
  }
  return out.sort();
}

Deno.test("UserRecords: records as nss-systemd reads them, counted by pod", async () => {
  await withDir(async (dir) => {
    const records = new UserRecords({ dir });
    await records.use("pod-a", { users: [5000], groups: [5000, 6000] });
    await records.use("pod-b", { users: [], groups: [6000] });
    assert.deepEqual(await listing(dir), [
      "5000.group -> systemk-5000.group",
      "5000.user -> systemk-5000.user",
      "6000.group -> systemk-6000.group",
      "systemk-5000.group",
      "systemk-5000.user",
      "systemk-6000.group",
    ]);
    const user = JSON.parse(await Deno.readTextFile(`${dir}/5000.user`));
    assert.deepEqual([user.userName, user.uid, user.gid], ["systemk-5000", 5000, 5000]);
    assert.equal((await Deno.stat(`${dir}/systemk-5000.user`)).mode! & 0o777, 0o644);
    const group = JSON.parse(await Deno.readTextFile(`${dir}/6000.group`));
    assert.deepEqual([group.groupName, group.gid], ["systemk-6000", 6000]);

    // pod-a no longer uses 5000 (a changed spec): its records go, 6000 stays for both.
    await records.release("pod-a", { users: [], groups: [6000] });
    assert.deepEqual(await listing(dir), [
      "6000.group -> systemk-6000.group",
      "systemk-6000.group",
    ]);
    await records.release("pod-a");
    assert.equal((await listing(dir)).length, 2, "pod-b still uses 6000");
    await records.release("pod-b");
    assert.deepEqual(await listing(dir), []);
  });
});

Deno.test("UserRecords: after a restart, records the units use stay, the others go", async () => {
  await withDir(async (dir) => {
    const before = new UserRecords({ dir });
    await before.use("kept", { users: [5000], groups: [5000] });
    await before.use("gone", { users: [5001], groups: [5001] });
    await Deno.writeTextFile(`${dir}/someone-else.user`, "{}");
    const after = new UserRecords({ dir });
    await after.adopt(new Map([["kept", podIdsOfUnit("[Service]\nUser=5000\n")]]));
    assert.deepEqual(await listing(dir), [
      "5000.group -> systemk-5000.group",
      "5000.user -> systemk-5000.user",
      "someone-else.user",
      "systemk-5000.group",
      "systemk-5000.user",
    ]);
    await after.release("kept");
    assert.deepEqual(await listing(dir), ["someone-else.user"]);
  });
});

Deno.test("UserRecords: an id another record holds is refused, that record untouched", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/theirs.user`, '{"userName":"theirs","uid":5000}');
    await Deno.symlink("theirs.user", `${dir}/5000.user`);
    const records = new UserRecords({ dir });
    await assert.rejects(
      records.use("p", { users: [5000], groups: [] }),
      /5000\.user is a user record systemk did not make: id 5000 is taken/,
    );
    assert.deepEqual(await listing(dir), ["5000.user -> theirs.user", "theirs.user"]);
  });
});
