/**
 * The node's security policy attacked the way a pod author would, through the real API server
 * and a real systemd 252 (issue #16 items 3, 5 and 9):
 *
 * - pods that pass Pod Security "restricted" (the namespace enforces it) ask for the disk group
 *   to read a block device, for gid 0 to read a root-group file, for a host account's uid;
 * - a non-root pod adds CAP_SETUID and calls setuid(0); a root (unprivileged) pod reads a raw
 *   disk under /dev;
 * - an `https://` image from an unlisted server; an image pinning an older version of an
 *   installed package;
 * - a pod plants a symlink in an allowed hostPath for another pod's hostPath or subPath to
 *   follow into /etc; hostPath types; a privileged pod on a node that refuses them;
 * - a key removed from a ConfigMap; a `medium: Memory` emptyDir with `sizeLimit: 0`.
 *
 * The disk is a loop device over a file in the test system's own overlay, detached at the end.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { CoreV1Event, V1Container, V1Pod } from "@kubernetes/client-node";
import { buildDeb, serveDebs, sha256File } from "../packages/_fixtures.ts";
import { containerState, type NodeEnv, startNodeEnv, waitFor, waitForPod } from "./_node_env.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const DISK_MARKER = "SYSTEMK-DISK-MARKER";
const ROOT_GROUP_MARKER = "ROOT-GROUP-MARKER";
const RESTRICTED_NS = "restricted";

/** What Pod Security "restricted" asks of a container. */
const RESTRICTED = {
  runAsNonRoot: true,
  allowPrivilegeEscalation: false,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
};

/** A one-container pod on n1 that runs once. */
function pod(
  name: string,
  namespace: string,
  podSecurity: Record<string, unknown>,
  container: Partial<V1Container>,
  spec: Record<string, unknown> = {},
) {
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace },
    spec: {
      nodeName: "n1",
      restartPolicy: "Never",
      terminationGracePeriodSeconds: 2,
      securityContext: podSecurity,
      ...spec,
      containers: [{ name: "app", image: "/bin/sh", ...container }],
    },
  };
}

const sh = (script: string) => ({ command: ["/bin/sh", "-c", script] });

/** What a unit of the test systemd wrote to the journal. */
async function journal(env: NodeEnv, namespace: string, name: string): Promise<string> {
  const unit = `systemk.${namespace}.${name}.app.service`;
  return (await env.system.exec(["journalctl", "--no-pager", "-o", "cat", "-u", unit])).stdout;
}

async function events(env: NodeEnv, namespace: string, name: string): Promise<CoreV1Event[]> {
  const list = await env.getJSON<{ items: CoreV1Event[] }>([
    "events",
    "-n",
    namespace,
    "--field-selector",
    `involvedObject.name=${name}`,
  ]);
  return list?.items ?? [];
}

/** Runs in the test system; fails the test when the script fails. */
async function inSystem(env: NodeEnv, script: string): Promise<string> {
  const out = await env.system.exec(["sh", "-c", script]);
  assert.equal(out.code, 0, `${script}: ${out.stdout}${out.stderr}`);
  return out.stdout.trim();
}

const isTerminated = (p: V1Pod) => containerState(p)?.terminated !== undefined;

/**
 * Waits until the pod is refused (waiting with `reason`) or its container ran; asserts the
 * refusal and its Warning event, both with a message matching `message`.
 */
async function assertRefused(
  env: NodeEnv,
  namespace: string,
  name: string,
  reason: string,
  message: RegExp,
): Promise<string> {
  // An image pull error turns into ImagePullBackOff (same message) while the retry waits.
  const reasons = reason === "ErrImagePull" ? [reason, "ImagePullBackOff"] : [reason];
  const done = await waitForPod(
    env,
    name,
    `refused (${reason}) or run`,
    (p) => isTerminated(p) || reasons.includes(containerState(p)?.waiting?.reason ?? ""),
    { namespace },
  );
  const ran = isTerminated(done) ? await journal(env, namespace, name) : "";
  assert.ok(
    reasons.includes(containerState(done)?.waiting?.reason ?? ""),
    `not refused with ${reason}: ${JSON.stringify(containerState(done))}\n${ran}`,
  );
  const shown = containerState(done)?.waiting?.message ?? "";
  assert.match(shown, message);
  const event = await waitFor(
    `a Warning event for ${name}`,
    async () =>
      (await events(env, namespace, name)).find((e) =>
        e.type === "Warning" && message.test(e.message ?? "")
      ),
  );
  console.log(`  ${name}: ${reason}: ${shown}\n    event ${event.reason}`);
  return shown;
}

/**
 * Waits until the pod's container ended and its journal holds its `last` line (journald may
 * lag behind the unit's end); returns what it printed.
 */
async function ranToEnd(
  env: NodeEnv,
  namespace: string,
  name: string,
  last: RegExp,
): Promise<string> {
  await waitForPod(env, name, "run to its end", isTerminated, { namespace });
  return await waitFor(`${name}'s last line`, async () => {
    const text = await journal(env, namespace, name);
    return last.test(text) ? text : undefined;
  });
}

Deno.test(
  "security policy end to end: ids, groups, capabilities, devices, images, host paths, volumes",
  opts,
  async (t) => {
    const debs = await Deno.makeTempDir({ prefix: "systemk-evil-debs-" });
    const server = await serveDebs(debs);
    const env = await startNodeEnv();
    let loop = "";
    try {
      // A disk to read: a loop device over a file of the test system's overlay, holding a marker;
      // and a node of it outside /dev, group disk, as udev would make /dev/sda.
      loop = await inSystem(
        env,
        `set -e; mkdir -p /srv/systemk-test; img=/srv/systemk-test/disk.img
       head -c 1048576 /dev/zero > $img
       printf ${DISK_MARKER} | dd of=$img conv=notrunc 2> /dev/null
       loop=$(losetup -f --show $img)
       mknod /srv/systemk-test/disk b $((0x$(stat -c %t $loop))) $((0x$(stat -c %T $loop)))
       chgrp disk /srv/systemk-test/disk; chmod 0660 /srv/systemk-test/disk
       printf ${ROOT_GROUP_MARKER} > /etc/systemk-test-root-group; chmod 0640 /etc/systemk-test-root-group
       echo $loop`,
      );
      // Reachable without the defences: group disk reads the node, root reads the loop device.
      const control = await inSystem(
        env,
        `setpriv --reuid=65534 --regid=65534 --groups=6 head -c 19 /srv/systemk-test/disk`,
      );
      assert.equal(control, DISK_MARKER, "the disk node is readable by group disk");
      await env.apply({
        apiVersion: "v1",
        kind: "Namespace",
        metadata: {
          name: RESTRICTED_NS,
          labels: { "pod-security.kubernetes.io/enforce": "restricted" },
        },
      });
      await waitFor(
        "the default service account of the restricted namespace",
        () => env.getJSON(["serviceaccount", "default", "-n", RESTRICTED_NS]),
      );

      await t.step(
        "a restricted pod in group disk is refused; it never reads the disk",
        async () => {
          await env.apply(pod(
            "disk-reader",
            RESTRICTED_NS,
            { runAsUser: 5000, supplementalGroups: [6] },
            { ...sh("head -c 19 /srv/systemk-test/disk; echo"), securityContext: RESTRICTED },
          ));
          await assertRefused(
            env,
            RESTRICTED_NS,
            "disk-reader",
            "CreateContainerConfigError",
            /supplementalGroups 6 is the host's group disk.*--allowed-host-groups=disk/,
          );
          assert.ok(!(await journal(env, RESTRICTED_NS, "disk-reader")).includes(DISK_MARKER));
        },
      );

      await t.step(
        "a restricted pod with runAsGroup 0 is refused; the root-group file stays unread",
        async () => {
          await env.apply(pod(
            "root-group",
            RESTRICTED_NS,
            { runAsUser: 5000, runAsGroup: 0 },
            { ...sh("cat /etc/systemk-test-root-group; echo"), securityContext: RESTRICTED },
          ));
          await assertRefused(
            env,
            RESTRICTED_NS,
            "root-group",
            "CreateContainerConfigError",
            /runAsGroup 0 is the host's group root.*--allowed-host-groups=root/,
          );
          assert.ok(!(await journal(env, RESTRICTED_NS, "root-group")).includes(ROOT_GROUP_MARKER));
        },
      );

      await t.step("a restricted pod running as a host account (_apt) is refused", async () => {
        await env.apply(pod(
          "host-account",
          RESTRICTED_NS,
          { runAsUser: 42 },
          { ...sh("id"), securityContext: RESTRICTED },
        ));
        await assertRefused(
          env,
          RESTRICTED_NS,
          "host-account",
          "CreateContainerConfigError",
          /runAsUser 42 is the host's account _apt.*--allowed-host-users=_apt/,
        );
      });

      await t.step("capabilities.add SETUID as uid 65534: setuid(0) fails", async () => {
        await env.apply(pod("setuid", "default", { runAsUser: 65534 }, {
          ...sh('setpriv --reuid=0 id -u; echo "exit $?"'),
          securityContext: { capabilities: { add: ["SETUID"] } },
        }));
        const out = await ranToEnd(env, "default", "setuid", /^exit \d+$/m);
        console.log(`  setuid: ${out.trim().replaceAll("\n", " | ")}`);
        assert.doesNotMatch(out, /^0$/m, "it became root");
        assert.match(out, /setresuid failed: Operation not permitted/);
        assert.match(out, /^exit 127$/m);
      });

      await t.step("a root pod (not privileged) sees no disk under /dev", async () => {
        await env.apply(pod("raw-disk", "default", {}, {
          ...sh(`head -c 19 ${loop}; echo " exit $?"; ls /dev`),
        }));
        const out = await ranToEnd(env, "default", "raw-disk", / exit \d+/);
        console.log(`  raw-disk: ${out.trim().replaceAll("\n", " ")}`);
        assert.ok(!out.includes(DISK_MARKER), `it read the disk:\n${out}`);
        assert.match(out, /No such file or directory/);
      });

      await t.step(
        "an https:// image from a server the node does not list is never downloaded",
        async () => {
          // Its maintainer script would run as root and leave a mark.
          const deb = await buildDeb(debs, "systemk-evil", "1.0", {
            postinst: "touch /var/lib/systemk-evil-ran",
          });
          const url = `${server.origin}/systemk-evil_1.0_all.deb#sha256=${await sha256File(deb)}`;
          await env.apply(
            pod("https-image", "default", {}, { image: url, command: ["/bin/true"] }),
          );
          await assertRefused(
            env,
            "default",
            "https-image",
            "ErrImagePull",
            /refused by node policy: this node installs https:\/\/ images from no URL \(--allowed-image-url-prefixes\)/,
          );
          assert.deepEqual(server.requests, [], "nothing was downloaded");
          assert.notEqual((await env.system.exec(["dpkg-query", "-W", "systemk-evil"])).code, 0);
          assert.notEqual(
            (await env.system.exec(["test", "-e", "/var/lib/systemk-evil-ran"])).code,
            0,
          );
        },
      );

      await t.step(
        "a pinned older version of an installed package does not downgrade it",
        async () => {
          const { name, installed, older } = await olderVersion(env);
          console.log(`  ${name}: installed ${installed}, pinning ${older}`);
          await env.apply(pod("downgrade", "default", {}, {
            image: `${name}=${older}`,
            command: ["/bin/true"],
          }));
          await assertRefused(
            env,
            "default",
            "downgrade",
            "ErrImagePull",
            /would downgrade installed packages, which this node refuses: --allow-package-downgrades/,
          );
          assert.equal(await inSystem(env, `dpkg-query -W -f='\${Version}' ${name}`), installed);
        },
      );

      await t.step("a ConfigMap key removed is a file removed from the running pod", async () => {
        const configMap = (data: Record<string, string>) => ({
          apiVersion: "v1",
          kind: "ConfigMap",
          metadata: { name: "keys", namespace: "default" },
          data,
        });
        await env.apply(
          configMap({ kept: "1", removed: "2" }),
          pod("keys", "default", {}, {
            ...sh("while true; do echo \"files: $(ls /config | tr '\\n' ' ')\"; sleep 0.5; done"),
            volumeMounts: [{ name: "config", mountPath: "/config" }],
          }, { volumes: [{ name: "config", configMap: { name: "keys" } }] }),
        );
        await waitFor(
          "both keys in the container",
          async () => (await journal(env, "default", "keys")).includes("files: kept removed"),
        );
        await env.apply(configMap({ kept: "1" }));
        await waitFor(
          "the removed key gone from the container",
          async () => (await journal(env, "default", "keys")).trimEnd().endsWith("files: kept"),
          60_000,
        );
        await env.kubectl(["delete", "pod", "keys", "--wait=false"]);
      });

      await t.step(
        "a Memory emptyDir with sizeLimit 0 is as large as the pod's memory limit",
        async () => {
          await env.apply(pod("memory", "default", {}, {
            ...sh("echo \"blocks $(stat -f -c '%b %S' /m)\""),
            resources: { limits: { memory: "64Mi" } },
            volumeMounts: [{ name: "m", mountPath: "/m" }],
          }, { volumes: [{ name: "m", emptyDir: { medium: "Memory", sizeLimit: "0" } }] }));
          const out = await ranToEnd(env, "default", "memory", /blocks \d+ \d+/);
          const [, blocks, size] = /blocks (\d+) (\d+)/.exec(out) ?? [];
          console.log(`  memory emptyDir: ${blocks} blocks of ${size} bytes`);
          // A tmpfs with size=0 has no limit and reports 0 blocks.
          assert.equal(Number(blocks) * Number(size), 64 * 2 ** 20);
        },
      );

      await t.step("with --allow-privileged=false and one allowed host path", async () => {
        await env.stopAgent();
        await env.startAgent(["--allow-privileged=false", "--allowed-host-paths=/srv/shared"]);
        await inSystem(env, "mkdir -p /srv/shared/mine");
      });

      await t.step("a privileged pod is refused on a node that does not allow them", async () => {
        await env.apply(pod("privileged", "default", {}, {
          ...sh("id"),
          securityContext: { privileged: true },
        }));
        await assertRefused(
          env,
          "default",
          "privileged",
          "CreateContainerConfigError",
          /securityContext.privileged is set, and node n1 does not run privileged containers \(--allow-privileged=false\)/,
        );
      });

      await t.step(
        "a symlink planted in an allowed hostPath leads no other pod into /etc",
        async () => {
          // The planter may write into /srv/shared (allowed): it points a name at /etc.
          await env.apply(pod("planter", "default", {}, {
            ...sh("ln -s /etc /shared/escape && echo planted"),
            volumeMounts: [{ name: "shared", mountPath: "/shared" }],
          }, { volumes: [{ name: "shared", hostPath: { path: "/srv/shared" } }] }));
          await ranToEnd(env, "default", "planter", /planted/);
          const writer = (name: string, path: string, subPath?: string) =>
            pod(name, "default", {}, {
              ...sh(`echo ${name} > /target/systemk-escaped-${name} && echo wrote`),
              volumeMounts: [{ name: "target", mountPath: "/target", subPath }],
            }, { volumes: [{ name: "target", hostPath: { path } }] });
          // Either way, as the volume's path or as a subPath into the allowed one.
          await env.apply(
            writer("by-path", "/srv/shared/escape"),
            writer("by-subpath", "/srv/shared", "escape"),
          );
          for (const name of ["by-path", "by-subpath"]) {
            const refused = await waitForPod(
              env,
              name,
              "refused (FailedMount) or run",
              (p) => isTerminated(p) || p.status?.reason === "FailedMount",
            );
            assert.equal(
              refused.status?.reason,
              "FailedMount",
              await journal(env, "default", name),
            );
            assert.match(
              refused.status?.message ?? "",
              /hostPath \/srv\/shared\/escape resolves to \/etc, which is not allowed on this node \(--allowed-host-paths\)/,
            );
            const event = await waitFor(
              "a FailedMount event",
              async () =>
                (await events(env, "default", name)).find((e) => e.reason === "FailedMount"),
            );
            console.log(`  ${name}: FailedMount: ${event.message}`);
            const escaped = await env.system.exec(["test", "-e", `/etc/systemk-escaped-${name}`]);
            assert.notEqual(escaped.code, 0, `/etc/systemk-escaped-${name} was written`);
          }
        },
      );

      await t.step("hostPath types: Directory must exist, DirectoryOrCreate makes it", async () => {
        const typed = (name: string, type: string) =>
          pod(name, "default", {}, {
            ...sh("echo ok"),
            volumeMounts: [{ name: "v", mountPath: "/v" }],
          }, { volumes: [{ name: "v", hostPath: { path: `/srv/shared/${name}`, type } }] });
        await env.apply(typed("missing-dir", "Directory"), typed("made-dir", "DirectoryOrCreate"));
        const missing = await waitForPod(
          env,
          "missing-dir",
          "refused",
          (p) => p.status?.reason === "FailedMount",
        );
        assert.match(
          missing.status?.message ?? "",
          /hostPath type check failed: \/srv\/shared\/missing-dir is not a directory/,
        );
        await ranToEnd(env, "default", "made-dir", /ok/);
        assert.equal(await inSystem(env, "stat -c '%F %a' /srv/shared/made-dir"), "directory 755");
      });
    } finally {
      if (loop) {
        await env.system.exec(["losetup", "-d", loop]);
      }
      await env.stop();
      await server.close();
      await Deno.remove(debs, { recursive: true });
    }
  },
);

/** An installed package of the test system with an older version in its apt sources. */
async function olderVersion(
  env: NodeEnv,
): Promise<{ name: string; installed: string; older: string }> {
  // Documentation and small libraries the node does not run: downgrading them (were the
  // defence missing) harms nothing but the test system's overlay.
  for (const name of ["git-man", "bsdextrautils", "libc-l10n", "jq"]) {
    const installed = (await env.system.exec(["dpkg-query", "-W", "-f=${Version}", name])).stdout;
    if (!installed) continue;
    const madison = (await env.system.exec(["apt-cache", "madison", name])).stdout;
    for (const line of madison.split("\n")) {
      const version = line.split("|")[1]?.trim();
      if (!version) continue;
      const lower = await env.system.exec(["dpkg", "--compare-versions", version, "lt", installed]);
      if (lower.code === 0) return { name, installed, older: version };
    }
  }
  throw new Error("no installed package has an older version in the apt sources");
}
