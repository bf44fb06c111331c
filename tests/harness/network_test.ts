import assert from "node:assert/strict";
import { createVethLink } from "./network.ts";
import { bootTestSystemd } from "./systemd.ts";

/** Whether the host has an interface of that name. */
async function hostHasLink(name: string): Promise<boolean> {
  const out = await new Deno.Command("ip", { args: ["link", "show", name], stderr: "null" })
    .output();
  return out.success;
}

Deno.test("a system booted with a veth link: HTTP both ways, loopback up, nothing left", async () => {
  const link = await createVethLink();
  let server: Deno.HttpServer<Deno.NetAddr> | undefined;
  try {
    assert.equal(link.prefixLength, 30);
    assert.match(link.hostAddress, /^(198\.51\.100|203\.0\.113)\./);
    assert.ok(await hostHasLink(link.hostInterface));
    const sd = await bootTestSystemd({ network: link });
    try {
      assert.equal(sd.network, link);
      // Inside: the node end, with its address, and loopback; the host's uplink is not there.
      const addresses = await sd.exec(["ip", "-4", "-o", "addr", "show"]);
      assert.match(
        addresses.stdout,
        new RegExp(`${link.nodeInterface} +inet ${link.nodeAddress}/30`),
      );
      assert.match(addresses.stdout, /lo +inet 127\.0\.0\.1\/8/);
      assert.doesNotMatch(addresses.stdout, /eth0/);
      assert.equal(await hostHasLink(link.nodeInterface), false, "the node end moved inside");

      // Node → host: a server on the host end answers a client inside.
      server = Deno.serve(
        { hostname: link.hostAddress, port: 0, onListen: () => {} },
        () => new Response("from the host"),
      );
      const hostURL = `http://${link.hostAddress}:${server.addr.port}/`;
      const fromInside = await sd.exec(["curl", "-sS", "--max-time", "10", hostURL]);
      assert.equal(fromInside.stdout, "from the host", fromInside.stderr);

      // Host → node: a server inside, on the node end, answers the host; loopback works inside.
      const started = await sd.exec([
        ...["systemd-run", "--unit=web", "--property=WorkingDirectory=/etc"],
        ...["/usr/bin/python3", "-m", "http.server", "8080", "--bind", "0.0.0.0"],
      ]);
      assert.equal(started.code, 0, started.stderr);
      const fetched = await waitForFetch(`http://${link.nodeAddress}:8080/hostname`);
      assert.equal(fetched.trim(), sd.name);
      const local = await sd.exec([
        "curl",
        "-sS",
        "--max-time",
        "10",
        "http://127.0.0.1:8080/hostname",
      ]);
      assert.equal(local.stdout.trim(), sd.name, local.stderr);
    } finally {
      await sd.stop();
    }
    // The namespace took the pair with it; remove() still ends its keeper.
    assert.equal(await hostHasLink(link.hostInterface), false, "the host end went with it");
  } finally {
    await server?.shutdown();
    await link.remove();
  }
  assert.equal(await hostHasLink(link.hostInterface), false);
});

Deno.test("links side by side get distinct blocks; remove() deletes an unused one", async () => {
  const links = await Promise.all([createVethLink(), createVethLink(), createVethLink()]);
  try {
    const hosts = new Set(links.map((l) => l.hostAddress));
    const names = new Set(links.map((l) => l.hostInterface));
    assert.equal(hosts.size, 3);
    assert.equal(names.size, 3);
    for (const link of links) {
      assert.ok(await hostHasLink(link.hostInterface));
      // Both ends still on the host: the node end's address is not assigned yet.
      assert.ok(await hostHasLink(link.nodeInterface));
    }
  } finally {
    await Promise.all(links.map((l) => l.remove()));
  }
  for (const link of links) {
    assert.equal(await hostHasLink(link.hostInterface), false);
    assert.equal(await hostHasLink(link.nodeInterface), false);
  }
});

Deno.test("a link is removed when the process holding it dies", async () => {
  // A child Deno claims a link, prints its name and is killed without removing it.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `const { createVethLink } = await import(${
        JSON.stringify(import.meta.resolve("./network.ts"))
      });
       const link = await createVethLink();
       console.log(link.hostInterface);
       await new Promise(() => {});`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let printed = "";
  while (!printed.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    printed += value;
  }
  const name = printed.trim();
  assert.match(name, /^skv\d+h$/);
  assert.ok(await hostHasLink(name));
  child.kill("SIGKILL");
  await child.status;
  await reader.cancel();
  const deadline = Date.now() + 10_000;
  while (await hostHasLink(name) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(await hostHasLink(name), false, `${name} removed by its keeper`);
});

/** The body of `url` once it answers (the server inside may still be starting). */
async function waitForFetch(url: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(5000) });
      return await response.text();
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
