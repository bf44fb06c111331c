/**
 * What the planner intends for a pod, restated independently of src/plan (Kubernetes' rules as
 * the README states them), and checks of a planned unit against it that read the unit the way
 * systemd does (the unit module's reference decoders), never through the planner's encoders.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { V1Container, V1Pod } from "@kubernetes/client-node";
import type { FuzzCase } from "./_pods.ts";
import { ALLOWED_HOST_PATHS, PACKAGE_ARGV, PACKAGE_ENV, SECRET_MARKER } from "./_pods.ts";
import type { PodPlan, VolumeEntry } from "../../src/plan/mod.ts";
import {
  decodeBindPaths,
  decodeEnvironment,
  decodeExecCommandLine,
  decodeTemporaryFileSystems,
  parseUnit,
  readMetadata,
  type UnitFile,
} from "../../src/unit/mod.ts";

/** Directives the planner may write, per section: anything else is a bug. */
export const ALLOWED_KEYS: Record<string, ReadonlySet<string>> = {
  Unit: new Set(["Description", "StartLimitIntervalSec", "Requires", "After"]),
  Service: new Set([
    // lifecycle
    "Type",
    "Restart",
    "RestartSec",
    "RemainAfterExit",
    "TimeoutStartSec",
    "TimeoutStopSec",
    "KillMode",
    "KillSignal",
    "SendSIGKILL",
    "FinalKillSignal",
    // identity and what runs
    "User",
    "Group",
    "SupplementaryGroups",
    "WorkingDirectory",
    "Environment",
    "EnvironmentFile",
    "ExecStart",
    // resources, in the pod's slice
    "Slice",
    "CPUQuota",
    "MemoryMax",
    "MemorySwapMax",
    "CPUWeight",
    "MemoryLow",
    // sandbox
    "NoNewPrivileges",
    "CapabilityBoundingSet",
    "AmbientCapabilities",
    "ProtectSystem",
    "ProtectHome",
    "ProtectKernelTunables",
    "ProtectControlGroups",
    "PrivateDevices",
    "PrivateTmp",
    "TemporaryFileSystem",
    "InaccessiblePaths",
    "ProtectProc",
    "ReadWritePaths",
    "BindPaths",
    "BindReadOnlyPaths",
    "StandardOutput",
    "StandardError",
  ]),
  "X-Kubernetes": new Set([
    "Namespace",
    "PodName",
    "PodUID",
    "ContainerName",
    "InitContainer",
    "Image",
    "NodeName",
    "ContainerHash",
    "Index",
    "Resources",
  ]),
};

/** `$(VAR)` expansion as Kubernetes defines it, written as one regex pass (not the planner's loop). */
export function expandReferences(
  text: string,
  lookup: (name: string) => string | undefined,
): string {
  return text.replace(/\$(?:\$|\(([^)]*)\))/g, (match, name: string | undefined) => {
    if (name === undefined) return "$";
    return lookup(name) ?? match;
  });
}

/** systemd's path simplification. */
export function simplify(path: string): string {
  return "/" + path.split("/").filter((c) => c !== "" && c !== ".").join("/");
}

/** One intended variable. */
interface Variable {
  value: string;
  secret: boolean;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// Lenient: only referenced keys matter, and those were text or the planner would have refused.
const utf8 = new TextDecoder("utf-8", { ignoreBOM: true });

/** The entries of the ConfigMap or Secret `name`, as text; undefined when there is none. */
function objectEntries(
  c: FuzzCase,
  kind: "configMap" | "secret",
  name: string | undefined,
): Map<string, string> | undefined {
  if (name === undefined) return undefined;
  const out = new Map<string, string>();
  if (kind === "configMap") {
    const object = c.input.configMaps.get(name);
    if (!object) return undefined;
    // A lone surrogate cannot reach a process: it becomes U+FFFD, as Go's JSON decoding makes it.
    for (const [k, v] of Object.entries(object.data ?? {})) out.set(k, v.toWellFormed());
  } else {
    const object = c.input.secrets.get(name);
    if (!object) return undefined;
    for (const [k, v] of Object.entries(object.data ?? {})) {
      out.set(k, utf8.decode(Uint8Array.from(atob(v), (ch) => ch.charCodeAt(0))));
    }
  }
  return out;
}

/** The node-provided variables (README: "Environment"). */
function nodeVariables(c: FuzzCase): Map<string, string> {
  const n = c.input.node;
  return new Map([
    ["SYSTEMK_NODE_INTERNAL_IP", n.internalIP],
    ["SYSTEMK_NODE_EXTERNAL_IP", n.externalIP],
    ["HOSTNAME", n.hostname],
    ["KUBERNETES_SERVICE_HOST", n.apiServerHost!],
    ["KUBERNETES_SERVICE_PORT", String(n.apiServerPort)],
  ]);
}

/** The container's intended environment (Kubernetes' makeEnvironmentVariables order). */
export function intendedEnvironment(c: FuzzCase, container: V1Container): Map<string, Variable> {
  const env = new Map<string, Variable>();
  const provided = nodeVariables(c);
  for (const source of container.envFrom ?? []) {
    const secret = source.configMapRef === undefined;
    const ref = source.configMapRef ?? source.secretRef;
    const entries = objectEntries(c, secret ? "secret" : "configMap", ref?.name);
    for (const [key, value] of [...entries ?? []].sort()) {
      const name = (source.prefix ?? "") + key;
      if (ENV_NAME.test(name)) env.set(name, { value, secret });
    }
  }
  for (const v of container.env ?? []) {
    const from = v.valueFrom;
    if (v.value) {
      let secret = false;
      const value = expandReferences(v.value, (name) => {
        const own = env.get(name);
        if (own?.secret) secret = true;
        return own?.value ?? provided.get(name);
      });
      env.set(v.name, { value, secret });
    } else if (from?.secretKeyRef || from?.configMapKeyRef) {
      const secret = from.secretKeyRef !== undefined;
      const ref = from.secretKeyRef ?? from.configMapKeyRef!;
      const value = objectEntries(c, secret ? "secret" : "configMap", ref.name)?.get(ref.key);
      if (value !== undefined) env.set(v.name, { value, secret });
    } else {
      env.set(v.name, { value: "", secret: false });
    }
  }
  for (const [name, value] of provided) if (!env.has(name)) env.set(name, { value, secret: false });
  return env;
}

/** The argv the container must run (the seed's ExecStart rules, README "What a pod becomes"). */
export function intendedArgv(
  container: V1Container,
  packaged: boolean,
  env: Map<string, Variable>,
): string[] {
  const expand = (words: string[] | undefined) =>
    (words ?? []).map((w) => expandReferences(w, (n) => env.get(n)?.value));
  const command = expand(container.command);
  const args = expand(container.args);
  if (!packaged || (command.length > 0 && args.length > 0)) return [...command, ...args];
  const [exe, ...options] = PACKAGE_ARGV;
  if (command.length > 0) return [...command, ...options];
  if (args.length > 0) return [exe, ...args];
  return PACKAGE_ARGV;
}

function directives(unit: UnitFile, section: string, key: string): string[] {
  return unit.sections.filter((s) => s.name === section).flatMap((s) =>
    s.lines.flatMap((l) => (l.kind === "directive" && l.key === key ? [l.value] : []))
  );
}

/** Reads an EnvironmentFile= text the way systemd's env-file parser reads `NAME="..."` lines. */
export function readEnvironmentFile(text: string): [string, string][] {
  const out: [string, string][] = [];
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    assert.ok(eq > i, `env file: no assignment at ${i}`);
    const name = text.slice(i, eq);
    assert.equal(text[eq + 1], '"', `env file: ${name} is not double-quoted`);
    let value = "";
    let j = eq + 2;
    for (; text[j] !== '"'; j++) {
      assert.ok(j < text.length, `env file: ${name} is not terminated`);
      if (text[j] === "\\") {
        j++;
        assert.ok('"\\`$'.includes(text[j]), `env file: needless escape in ${name}`);
      }
      value += text[j];
    }
    assert.equal(text[j + 1], "\n");
    out.push([name, value]);
    i = j + 2;
  }
  return out;
}

/** Whether `path` is `root` or below it, compared by whole segments. */
export function isBelow(path: string, root: string): boolean {
  return path === root || path.startsWith(root + "/");
}

/** Resolves only `%%`: any other specifier in a planned value is a bug. */
function unescapePercent(value: string): string {
  assert.doesNotMatch(value.replaceAll("%%", ""), /%/, `unescaped specifier in ${value}`);
  return value.replaceAll("%%", "%");
}

/** The node path and read-only flag each mount of `container` must bind. */
function intendedBinds(
  plan: PodPlan,
  pod: V1Pod,
  container: V1Container,
  env: Map<string, Variable>,
) {
  return (container.volumeMounts ?? []).map((m) => {
    const volume = pod.spec!.volumes!.find((v) => v.name === m.name)!;
    const kind = volume.emptyDir
      ? "emptydir"
      : volume.configMap
      ? "configmap"
      : volume.secret
      ? "secret"
      : undefined;
    const root = kind
      ? `${plan.podDir}/volumes/${kind}/${m.name}`
      : simplify(volume.hostPath!.path);
    const subPath = m.subPathExpr !== undefined
      ? expandReferences(m.subPathExpr, (n) => env.get(n)?.value)
      : m.subPath ?? "";
    return {
      source: simplify(subPath === "" ? root : `${root}/${subPath}`),
      destination: simplify(m.mountPath),
      readOnly: kind === "configmap" || kind === "secret" || m.readOnly === true,
    };
  });
}

/**
 * Checks a successful plan against the intent: (b) every unit parses back to exactly the
 * intended directives; (c) every volume entry and bind source stays in the pod's directory or
 * a declared hostPath; (d) Secret data stays out of unit files and world-readable files.
 */
export function checkPlan(c: FuzzCase, plan: PodPlan): void {
  const pod = c.input.pod;
  const spec = pod.spec!;
  const stateDir = c.input.stateDir!;
  assert.equal(plan.podDir, `${stateDir}/${pod.metadata!.uid}`);
  assert.equal(simplify(plan.podDir), plan.podDir, "podDir is simplified");
  const entries = new Map(plan.volumes.map((v) => [v.path, v]));
  checkVolumeEntries(plan);

  const containers = [
    ...(spec.initContainers ?? []).map((container, index) => ({ container, init: true, index })),
    ...spec.containers.map((container, index) => ({ container, init: false, index })),
  ];
  assert.equal(plan.units.length, containers.length);
  plan.units.forEach((planned, k) => {
    const { container, init, index } = containers[k];
    const what = `unit ${planned.name}`;
    const unit = parseUnit(planned.text);
    assert.deepEqual(unit, planned.unit, `${what}: text parses back to the unit`);

    // Sections and keys: nothing the planner did not intend.
    assert.deepEqual(unit.header, [], `${what}: nothing before the first section`);
    assert.deepEqual(unit.sections.map((s) => s.name), ["Unit", "Service", "X-Kubernetes"]);
    for (const section of unit.sections) {
      for (const line of section.lines) {
        assert.equal(line.kind, "directive", `${what}: no comments`);
        if (line.kind !== "directive") continue;
        assert.ok(
          ALLOWED_KEYS[section.name].has(line.key),
          `${what}: [${section.name}] ${line.key}`,
        );
      }
    }

    // Identity.
    const namespace = pod.metadata!.namespace || "default";
    assert.deepEqual(readMetadata(unit), {
      namespace,
      podName: pod.metadata!.name,
      podUID: pod.metadata!.uid,
      containerName: container.name,
      init,
      image: container.image ?? "",
      nodeName: c.input.node.name,
      containerHash: readMetadata(unit)!.containerHash,
      index,
      resources: JSON.stringify(container.resources ?? {}),
    });
    assert.match(readMetadata(unit)!.containerHash, /^[0-9a-f]{64}$/);
    assert.deepEqual(directives(unit, "Unit", "Description").map(unescapePercent), [
      `${namespace}/${pod.metadata!.name} ${init ? "init " : ""}container ${container.name}`,
    ]);

    const packaged = c.input.packages.has(container.name);
    const env = intendedEnvironment(c, container);
    const argv = intendedArgv(container, packaged, env);

    // Environment: Environment= lines (last wins), then the env file overriding them.
    const effective = new Map<string, string>();
    for (const raw of directives(unit, "Service", "Environment")) {
      const [name, value] = decodeEnvironment(raw);
      effective.set(name, value);
    }
    const files = directives(unit, "Service", "EnvironmentFile");
    assert.ok(files.length <= 1, `${what}: at most one EnvironmentFile`);
    for (const path of files) {
      assert.equal(path, `${plan.podDir}/env/${container.name}.env`);
      const file = entries.get(path);
      assert.ok(file?.kind === "file", `${what}: ${path} is planned`);
      assert.equal(file.mode, 0o600);
      assert.equal(file.uid, 0);
      const dir = entries.get(`${plan.podDir}/env`);
      assert.ok(dir?.kind === "dir" && dir.mode === 0o700 && dir.uid === 0, "env dir root-only");
      const variables = readEnvironmentFile(utf8.decode(file.content));
      for (const [name, value] of variables) effective.set(name, value);
      const holdsSecret = variables.some(([name]) => env.get(name)?.secret);
      if (holdsSecret) assert.equal(file.secret, true, `${path} is marked secret`);
    }
    const intended = new Map<string, string>(packaged ? PACKAGE_ENV : []);
    for (const [name, v] of env) intended.set(name, v.value);
    assert.deepEqual(effective, intended, `${what}: environment`);
    for (const raw of directives(unit, "Service", "Environment")) {
      const [name, value] = decodeEnvironment(raw);
      assert.ok(!value.includes(SECRET_MARKER), `${what}: Secret data in Environment=${name}`);
    }

    // ExecStart: exactly the intended argv, once systemd has filled in `${VAR}` references.
    const execStarts = directives(unit, "Service", "ExecStart");
    assert.equal(execStarts.length, 1, `${what}: one ExecStart`);
    assert.deepEqual(
      decodeExecCommandLine(execStarts[0], { environment: effective }),
      argv,
      `${what}: argv`,
    );

    // WorkingDirectory: the simplified path, nothing else.
    const workingDirectory = directives(unit, "Service", "WorkingDirectory");
    assert.deepEqual(
      workingDirectory.map(unescapePercent),
      container.workingDir ? [simplify(container.workingDir)] : [],
      `${what}: WorkingDirectory`,
    );

    // User=: a name or uid systemd reads literally, resolving to the intended user (container
    // level first, then pod level; none = root). Group=/SupplementaryGroups=: numeric.
    const users = directives(unit, "Service", "User");
    for (const user of users) {
      assert.match(user, /^([A-Za-z_][A-Za-z0-9_.-]*|\d+)$/, `${what}: User=${user}`);
    }
    const level = [container.securityContext, spec.securityContext].find((l) =>
      l?.runAsUser !== undefined || l?.windowsOptions?.runAsUserName !== undefined
    );
    const intendedUid = level?.windowsOptions?.runAsUserName !== undefined
      ? c.users.find((u) => u.name === level.windowsOptions!.runAsUserName)?.uid
      : level?.runAsUser ?? 0;
    const user = users.at(-1);
    const uid = user === undefined
      ? 0
      : /^\d+$/.test(user)
      ? Number(user)
      : c.users.find((u) => u.name === user)?.uid;
    assert.equal(uid, intendedUid, `${what}: runs as ${user}`);
    for (const group of directives(unit, "Service", "Group")) assert.match(group, /^\d+$/);
    for (const groups of directives(unit, "Service", "SupplementaryGroups")) {
      assert.match(groups, /^\d+( \d+)*$/);
    }

    // Mounts: exactly the intended binds, sources inside the pod's directory or a hostPath.
    const intendedMounts = intendedBinds(plan, pod, container, env);
    const binds = [
      ...directives(unit, "Service", "BindPaths").flatMap((raw) =>
        decodeBindPaths(raw).map((b) => ({ ...b, readOnly: false }))
      ),
      ...directives(unit, "Service", "BindReadOnlyPaths").flatMap((raw) =>
        decodeBindPaths(raw).map((b) => ({ ...b, readOnly: true }))
      ),
    ];
    const sortKey = (b: { destination: string }) => b.destination;
    const byDestination = <T extends { destination: string }>(list: T[]) =>
      [...list].sort((a, b) => sortKey(a) < sortKey(b) ? -1 : 1);
    assert.deepEqual(
      byDestination(
        binds.map(({ source, destination, readOnly }) => ({ source, destination, readOnly })),
      ),
      byDestination(intendedMounts),
      `${what}: binds`,
    );
    const hostPaths = (spec.volumes ?? []).flatMap((v) =>
      v.hostPath ? [simplify(v.hostPath.path)] : []
    );
    for (const b of binds) {
      assert.ok(
        isBelow(b.source, plan.podDir) || hostPaths.some((h) => isBelow(b.source, h)),
        `${what}: bind source ${b.source} outside the pod`,
      );
      assert.ok(!b.source.split("/").includes(".."));
    }
    for (const h of hostPaths) {
      assert.ok(ALLOWED_HOST_PATHS.some((a) => isBelow(h, a)), `hostPath ${h} allowed`);
      assert.ok(!isBelow(h, stateDir) && !isBelow(stateDir, h), `hostPath ${h} vs state`);
    }

    // Other pods' files stay hidden.
    assert.deepEqual(
      directives(unit, "Service", "TemporaryFileSystem").flatMap(decodeTemporaryFileSystems),
      [{ path: stateDir, options: "" }],
    );

    // Other pods' units stay hidden: systemd's unit directories, and for a non-root user the
    // system bus; other users' processes.
    const inaccessible = directives(unit, "Service", "InaccessiblePaths").join(" ").split(" ");
    for (const path of ["/run/systemd/system", "/run/systemd/transient"]) {
      assert.ok(inaccessible.includes(`-${path}`), `${what}: ${path} hidden`);
    }
    const privileged = container.securityContext?.privileged === true;
    if (uid !== 0 && !privileged) {
      assert.ok(inaccessible.includes("-/run/dbus/system_bus_socket"), `${what}: bus hidden`);
    }
    if (!privileged) {
      assert.deepEqual(directives(unit, "Service", "ProtectProc"), ["invisible"], what);
    }

    // (d) Secret data never in a unit file, not even where command/args expand it.
    assert.ok(!planned.text.includes(SECRET_MARKER), `${what}: secret in unit text`);
  });
}

/** (c) and (d) for the volume entries. */
function checkVolumeEntries(plan: PodPlan): void {
  const paths = new Set<string>();
  for (const v of plan.volumes) {
    assert.ok(isBelow(v.path, plan.podDir), `${v.path} outside ${plan.podDir}`);
    assert.equal(simplify(v.path), v.path, `${v.path} is simplified`);
    assert.ok(!v.path.split("/").includes(".."), `${v.path} has '..'`);
    assert.ok(!v.path.includes("\0"), `${JSON.stringify(v.path)} has NUL`);
    assert.ok(!paths.has(v.path), `${v.path} planned twice`);
    paths.add(v.path);
    // Parents first: every entry's parent is the pod's parent or an earlier entry.
    const parent = v.path.slice(0, v.path.lastIndexOf("/"));
    if (v.path !== plan.podDir) assert.ok(paths.has(parent), `${v.path} before its parent`);
    if (v.kind === "file") checkFile(v);
  }
}

function checkFile(v: Extract<VolumeEntry, { kind: "file" }>): void {
  const text = utf8.decode(v.content);
  if (text.includes(SECRET_MARKER)) {
    assert.equal(v.secret, true, `${v.path} holds Secret data but is not marked secret`);
  }
  if (v.secret) assert.equal(v.mode & 0o007, 0, `${v.path} readable by others`);
}
