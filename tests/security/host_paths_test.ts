/**
 * The hostPath policy from the command line to the plan: `--allowed-host-paths` is parsed into
 * prefixes, and those decide which hostPath volumes a pod may mount.
 *
 * @module
 */
import assert from "node:assert/strict";
import { parseFlags, UsageError } from "../../src/cli/flags.ts";
import { planPod, PodError } from "../../src/plan/mod.ts";
import { inputFromManifest } from "../plan/_fixtures.ts";

const POD = (path: string) => `
kind: Pod
metadata: {name: h, uid: u-1}
spec:
  containers:
    - {name: c, image: /bin/true, command: [/bin/true], volumeMounts: [{name: h, mountPath: /h}]}
  volumes: [{name: h, hostPath: {path: ${JSON.stringify(path)}}}]`;

function plannable(flags: string[], path: string): boolean {
  const { config } = parseFlags(flags);
  const input = { ...inputFromManifest(POD(path)), allowedHostPaths: config.allowedHostPaths };
  try {
    planPod(input);
    return true;
  } catch (e) {
    if (!(e instanceof PodError)) throw e;
    assert.match(e.message, /hostPath\.path/);
    return false;
  }
}

Deno.test("--allowed-host-paths: none by default; prefixes by whole segments", () => {
  assert.deepEqual(parseFlags([]).config.allowedHostPaths, []);
  assert.deepEqual(
    parseFlags(["--allowed-host-paths= /srv, /var/log/,,"]).config.allowedHostPaths,
    ["/srv", "/var/log/"],
  );
  assert.equal(plannable([], "/srv/data"), false);
  assert.equal(plannable(["--allowed-host-paths=/srv,/var/log"], "/srv/data"), true);
  assert.equal(plannable(["--allowed-host-paths=/srv,/var/log"], "/var/log/"), true);
  assert.equal(plannable(["--allowed-host-paths=/srv"], "/srvx"), false);
  assert.equal(plannable(["--allowed-host-paths=/"], "/etc"), true);
  assert.equal(plannable(["--allowed-host-paths=/"], "/run/systemk/other/volumes"), false);
});

Deno.test("--allowed-host-paths: relative or '..' prefixes are a usage error", () => {
  for (const bad of ["srv", "/srv/../etc", "/srv,etc"]) {
    assert.throws(() => parseFlags([`--allowed-host-paths=${bad}`]), UsageError, bad);
  }
});
