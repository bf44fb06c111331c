/**
 * Generated pods for the planner fuzz suite: API-shaped pod specs (types as the API server
 * gives them) whose strings are either well-formed or hostile — newlines, NUL, `%` specifiers,
 * `$`/`$(VAR)`, quotes, backslashes, `[Section]` headers, `../` traversal, absolute paths,
 * 100 KB values, Unicode noncharacters, lone surrogates — together with the ConfigMaps,
 * Secrets, package units and node the planner needs.
 *
 * Every field picks a well-formed value most of the time and a hostile one otherwise, so cases
 * get past the early checks (names) and reach every later stage. {@link cleanCase} only picks
 * values the planner must accept.
 *
 * Secret data always starts with {@link SECRET_MARKER}, which no other generated string holds,
 * so a leak is a plain substring search.
 *
 * @module
 */
import fc from "fast-check";
import type {
  V1ConfigMap,
  V1Container,
  V1EnvFromSource,
  V1EnvVar,
  V1Pod,
  V1Secret,
  V1SecurityContext,
  V1Volume,
  V1VolumeMount,
} from "@kubernetes/client-node";
import {
  DEFAULT_SECURITY_POLICY,
  type NodeFacts,
  type PackageInfo,
  type PlanInput,
  type SecurityPolicy,
  type UserInfo,
} from "../../src/plan/mod.ts";
import {
  cleanString,
  hostilePath,
  hostileString,
  representableString,
  safeFileName,
} from "../../src/unit/_test_arbitraries.ts";

/** Every Secret value starts with it; nothing else generated contains it. */
export const SECRET_MARKER = "SEKRITqz";
/** The test node's state directory (not the default, so the default is not hard-wired). */
export const STATE_DIR = "/run/fuzz-systemk";
/** hostPath prefixes the test node allows. */
export const ALLOWED_HOST_PATHS = ["/srv", "/var/log/pods"];
/** The package unit of image `pkgd`. */
export const PACKAGE_UNIT = `[Unit]
Description=packaged daemon
[Service]
Type=simple
Environment=PKG_MODE=fast
ExecStart=/usr/sbin/pkgd -f --opt=1
Restart=on-failure
[Install]
WantedBy=multi-user.target
`;
/** argv of {@link PACKAGE_UNIT}'s ExecStart. */
export const PACKAGE_ARGV = ["/usr/sbin/pkgd", "-f", "--opt=1"];
/** Environment {@link PACKAGE_UNIT} sets before the pod's. */
export const PACKAGE_ENV: [string, string][] = [["PKG_MODE", "fast"]];

/** A node user whose name only a permissive NSS would allow. */
const hostileUserName = fc.constantFrom("%n", "a b", "x\nUser=root", "eve$", "ünï", "[Service]");

/** Fragments that traverse, expand or break out. */
const FRAGMENTS = [
  "../",
  "..",
  "/",
  "/etc/passwd",
  "$(A)",
  "$(B)",
  "$(S)",
  "$(HOSTNAME)",
  "$$(A)",
  "$$",
  "$(",
  ")",
  "${A}",
  "$A",
  "%n",
  "%%",
  "[Service]",
  "\n[Service]\nExecStartPre=/bin/evil\n",
  "\nUser=root",
  '"',
  "'",
  "\\",
  "\\\n",
  "\0",
  "\uffff",
  "\ud800",
  " ",
  ";",
];

const fragments = fc.array(fc.constantFrom(...FRAGMENTS), { minLength: 1, maxLength: 6 })
  .map((parts) => parts.join(""));

/** Very long values (about 1 KB or 100 KB), built from a hostile seed. */
const long = fc.tuple(hostileString, fc.constantFrom(1_000, 100_000)).map(([seed, n]) => {
  const unit = seed === "" ? "x" : seed;
  return unit.repeat(Math.ceil(n / unit.length)).slice(0, n);
});

/** Anything at all. */
export const wild: fc.Arbitrary<string> = fc.oneof(
  { weight: 6, arbitrary: hostileString },
  { weight: 4, arbitrary: fragments },
  { weight: 1, arbitrary: long },
);

/** Mostly `good`, sometimes `bad` (1 in `odds`). */
function mostly<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>, odds: number): fc.Arbitrary<T> {
  return fc.oneof({ weight: odds - 1, arbitrary: good }, { weight: 1, arbitrary: bad });
}

/** String arbitraries per kind of field; the clean and the hostile generator differ here. */
export interface Strings {
  /** Hostile choices besides the strings: bad references, contradictions, subPaths. */
  pick<T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>): fc.Arbitrary<T>;
  secretValue: fc.Arbitrary<Uint8Array>;
  label: fc.Arbitrary<string>;
  subdomain: fc.Arbitrary<string>;
  uid: fc.Arbitrary<string>;
  executable: fc.Arbitrary<string>;
  word: fc.Arbitrary<string>;
  envName: fc.Arbitrary<string>;
  envValue: fc.Arbitrary<string>;
  absolutePath: fc.Arbitrary<string>;
  workingDir: fc.Arbitrary<string>;
  key: fc.Arbitrary<string>;
  value: fc.Arbitrary<string>;
  itemPath: fc.Arbitrary<string>;
  hostPath: fc.Arbitrary<string>;
  image: fc.Arbitrary<string>;
  userName: fc.Arbitrary<string>;
  id: fc.Arbitrary<number>;
  prefix: fc.Arbitrary<string>;
}

const label = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
const subdomain = fc.array(label, { minLength: 1, maxLength: 3 }).map((l) => l.join("."));
const uid = fc.uuid();
const envName = fc.oneof(
  fc.constantFrom("A", "B", "S", "PKG_MODE", "HOSTNAME", "PATH"),
  fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/),
);
// $(VAR) references mixed into values, so expansion (and secret taint) happens often.
const withReferences = (s: fc.Arbitrary<string>) =>
  fc.array(fc.oneof(s, fc.constantFrom("$(A)", "$(S)", "$(HOSTNAME)", "$$(A)", "$(NOPE)")), {
    maxLength: 4,
  }).map((parts) => parts.join(""));
const key = fc.stringMatching(/^[-._a-zA-Z0-9]{1,12}$/).filter((k) =>
  k !== "." && k !== ".." && !k.startsWith("..")
);
const itemPath = fc.array(key, { minLength: 1, maxLength: 3 }).map((p) => p.join("/"));
const cleanPath = hostilePath.filter((p) => !/[\n\r]/.test(p));
const workingDir = cleanPath.filter((p) => {
  const simplified = "/" + p.split("/").filter((c) => c !== "" && c !== ".").join("/");
  return !/[ \t\\]$/.test(simplified) && new TextEncoder().encode(simplified).length < 4000;
});

/** Secret value bytes: the marker, then anything. */
const secretText = (s: fc.Arbitrary<string>) =>
  s.map((v) => new TextEncoder().encode(SECRET_MARKER + v));
const secretBytes = fc.uint8Array({ maxLength: 16 }).map((b) =>
  new Uint8Array([...new TextEncoder().encode(SECRET_MARKER), ...b])
);

/** Strings the planner must accept. */
export const CLEAN: Strings = {
  pick: (good) => good,
  secretValue: secretText(cleanString),
  label,
  subdomain,
  uid,
  // A `$` in argv[0] cannot be written next to a package's `$VAR` words: refused, so not here.
  executable: safeFileName.map((f) => "/usr/bin/" + f.replaceAll("$", "d")),
  // No noncharacters: systemd runs them in argv but cannot report such a unit over D-Bus.
  word: withReferences(cleanString),
  envName,
  envValue: withReferences(cleanString),
  absolutePath: cleanPath,
  workingDir,
  key,
  value: cleanString,
  itemPath,
  hostPath: fc.tuple(fc.constantFrom(...ALLOWED_HOST_PATHS), itemPath).map(([a, p]) => `${a}/${p}`),
  image: hostileString,
  userName: fc.constantFrom("nobody", "alice"),
  id: fc.constantFrom(1000, 65534, 1001),
  prefix: fc.constantFrom("", "P_", "cm_"),
};

/** Strings mostly well-formed, hostile one time in `odds`. */
export function hostile(odds: number): Strings {
  const m = <T>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<T>) => mostly(good, bad, odds);
  return {
    pick: m,
    secretValue: m(secretText(representableString), secretBytes),
    label: m(label, fc.oneof(wild, fc.constantFrom("A", "a_b", "a.b", "-a", "a".repeat(64)))),
    subdomain: m(subdomain, fc.oneof(wild, fc.constantFrom("a..b", ".a", "a/b", "A"))),
    uid: m(uid, fc.oneof(wild, fc.constantFrom("..", "../other", "a/b", ".", ""))),
    executable: m(
      CLEAN.executable,
      fc.oneof(wild, fc.constantFrom("-/bin/sh", "@/bin/sh", ";", "sh", "bin/sh", "/bin/")),
    ),
    word: m(CLEAN.word, wild),
    envName: m(envName, fc.oneof(wild, fc.constantFrom("1A", "A-B", "A.B", "A=B", ""))),
    envValue: m(CLEAN.envValue, wild),
    absolutePath: m(
      cleanPath,
      fc.oneof(
        wild,
        fc.constantFrom("/", "//", "/.", "relative", "/a/../b", "/a\nb", `${STATE_DIR}/x`),
      ),
    ),
    workingDir: m(workingDir, fc.oneof(wild, fc.constantFrom("/a ", "/a\\", "rel", "/a/.."))),
    key: m(key, fc.oneof(wild, fc.constantFrom("..", "../x", "/abs", "a/b", "..data", ""))),
    value: m(representableString, wild),
    itemPath: m(itemPath, fc.oneof(wild, fc.constantFrom("../x", "/etc/x", "a//b", "..a", ""))),
    hostPath: m(
      CLEAN.hostPath,
      fc.oneof(
        wild,
        fc.constantFrom("/", "/etc", "/srv/../etc", "/srvx", "/run", STATE_DIR, `${STATE_DIR}/u`),
        fc.constant("/srv/").chain((a) => wild.map((w) => a + w)),
      ),
    ),
    image: wild,
    userName: m(CLEAN.userName, fc.oneof(wild, hostileUserName, fc.constantFrom("root"))),
    id: m(CLEAN.id, fc.constantFrom(0, -1, 1.5, 65535, 2 ** 31, Number.NaN)),
    prefix: m(CLEAN.prefix, wild),
  };
}

/** Everything the planner gets for one generated pod, plus what the generator knows. */
export interface FuzzCase {
  input: PlanInput;
  /** The node's users (for checking `User=`). */
  users: UserInfo[];
}

/** runAsUser and runAsUserName on one level must agree; only hostile cases may contradict. */
function oneUser<T extends V1SecurityContext>(s: Strings, context: fc.Arbitrary<T>) {
  return s.pick(
    context.map((c) => {
      if (c.runAsUser === undefined) return c;
      const { windowsOptions: _, ...rest } = c;
      return rest as T;
    }),
    context,
  );
}

function securityContext(s: Strings): fc.Arbitrary<V1SecurityContext> {
  return oneUser(
    s,
    fc.record({
      runAsUser: s.id,
      runAsGroup: s.id,
      // The clean pod-level context always names a non-root user, so this always holds there.
      runAsNonRoot: s.pick(fc.constant(false), fc.boolean()),
      allowPrivilegeEscalation: fc.boolean(),
      privileged: fc.boolean(),
      readOnlyRootFilesystem: fc.boolean(),
      windowsOptions: fc.record({ runAsUserName: s.userName }),
    }, { requiredKeys: [] }),
  );
}

interface Names {
  volumes: string[];
  configMapKeys: string[];
  secretKeys: string[];
}

function envVar(s: Strings, names: Names): fc.Arbitrary<V1EnvVar> {
  const ref = (keys: string[]) =>
    s.pick(
      keys.length > 0
        ? fc.record({ key: fc.constantFrom(...keys), optional: fc.boolean() })
        : fc.record({ key: s.key, optional: fc.constant(true) }),
      fc.record({ key: s.key, optional: fc.boolean() }, { requiredKeys: ["key"] }),
    );
  return fc.oneof(
    { weight: 4, arbitrary: fc.record({ name: s.envName, value: s.envValue }) },
    {
      weight: 2,
      arbitrary: fc.record({
        name: s.envName,
        valueFrom: fc.record({
          secretKeyRef: ref(names.secretKeys).map((r) => ({ ...r, name: "sec" })),
        }),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        name: s.envName,
        valueFrom: fc.record({
          configMapKeyRef: ref(names.configMapKeys).map((r) => ({ ...r, name: "cm" })),
        }),
      }),
    },
  );
}

function envFrom(s: Strings): fc.Arbitrary<V1EnvFromSource> {
  return fc.oneof(
    fc.record({ prefix: s.prefix, configMapRef: fc.constant({ name: "cm" }) }, {
      requiredKeys: ["configMapRef"],
    }),
    fc.record({ prefix: s.prefix, secretRef: fc.constant({ name: "sec" }) }, {
      requiredKeys: ["secretRef"],
    }),
  );
}

function volumeMount(s: Strings, volumes: string[]): fc.Arbitrary<V1VolumeMount> {
  const plain = fc.record({
    name: fc.constantFrom(...volumes),
    mountPath: s.absolutePath,
    readOnly: fc.boolean(),
  });
  // Names of no volume, subPaths a volume may not have: refusals only hostile cases expect.
  const risky = fc.record({
    name: fc.oneof(fc.constantFrom(...volumes), s.key),
    mountPath: s.absolutePath,
    readOnly: fc.boolean(),
    subPath: fc.oneof(fc.constantFrom("sub", "a/b"), s.key, s.itemPath),
    subPathExpr: fc.constantFrom("$(S)", "$(A)/x", "x-$(HOSTNAME)"),
  }, { requiredKeys: ["name", "mountPath"] }).map((m) => {
    // One of subPath/subPathExpr, as the API server allows.
    if (m.subPath === undefined) return m;
    const { subPathExpr: _, ...rest } = m;
    return rest;
  });
  return s.pick<V1VolumeMount>(plain, risky);
}

/** Mount points distinct as systemd reads them (clean cases); hostile ones may repeat. */
function distinctMounts(mounts: V1VolumeMount[]): V1VolumeMount[] {
  const seen = new Set<string>();
  return mounts.filter((m) => {
    const simplified = "/" + m.mountPath.split("/").filter((c) => c !== "" && c !== ".").join("/");
    if (simplified === "/" || seen.has(simplified)) return false;
    seen.add(simplified);
    return true;
  });
}

function container(s: Strings, names: Names, packaged: boolean): fc.Arbitrary<V1Container> {
  const words = fc.array(s.word, { maxLength: 4 });
  return fc.record({
    name: s.label,
    image: packaged ? fc.constant("pkgd") : s.image,
    command: packaged
      ? fc.option(fc.tuple(s.executable, words).map(([e, w]) => [e, ...w]), { nil: undefined })
      : fc.tuple(s.executable, words).map(([e, w]) => [e, ...w]),
    args: fc.option(words, { nil: undefined }),
    env: fc.array(envVar(s, names), { maxLength: 5 }),
    envFrom: fc.array(envFrom(s), { maxLength: 2 }),
    workingDir: fc.option(s.workingDir, { nil: undefined }),
    volumeMounts: names.volumes.length === 0 ? fc.constant([]) : s.pick(
      fc.array(volumeMount(s, names.volumes), { maxLength: 3 }).map(distinctMounts),
      fc.array(volumeMount(s, names.volumes), { maxLength: 3 }),
    ),
    securityContext: fc.option(securityContext(s), { nil: undefined }),
  }, { requiredKeys: ["name", "image", "command"] });
}

function volumes(s: Strings, names: Names): fc.Arbitrary<V1Volume[]> {
  const items = (keys: string[]) => s.pick(fc.constant(undefined), itemList(keys));
  const itemList = (keys: string[]) =>
    fc.option(
      fc.array(
        fc.record({
          key: keys.length > 0 ? fc.oneof(fc.constantFrom(...keys), s.key) : s.key,
          path: s.itemPath,
          mode: fc.option(fc.integer({ min: 0, max: 0o777 }), { nil: undefined }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
      { nil: undefined },
    );
  const mode = fc.option(fc.integer({ min: 0, max: 0o777 }), { nil: undefined });
  return fc.tuple(...names.volumes.map((name) =>
    fc.oneof(
      fc.record({ emptyDir: fc.constantFrom({}, { medium: "Memory", sizeLimit: "1Mi" }) }),
      fc.record({
        configMap: fc.record({
          name: fc.constant("cm"),
          items: items(names.configMapKeys),
          defaultMode: mode,
        }),
      }),
      fc.record({
        secret: fc.record({
          secretName: fc.constant("sec"),
          items: items(names.secretKeys),
          defaultMode: mode,
        }),
      }),
      fc.record({
        hostPath: fc.record({
          path: s.hostPath,
          type: fc.constantFrom("", "DirectoryOrCreate", "File"),
        }),
      }),
    ).map((source) => ({ name, ...source } as V1Volume))
  ));
}

const USERS: UserInfo[] = [
  { name: "root", uid: 0, gid: 0 },
  { name: "alice", uid: 1000, gid: 1000 },
  { name: "nobody", uid: 65534, gid: 65534 },
];

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** A generated pod with its objects, packages and node, using `s` for every string. */
export function fuzzCase(s: Strings): fc.Arbitrary<FuzzCase> {
  return fc.record({
    volumeNames: fc.uniqueArray(s.label, { maxLength: 4 }),
    configMapKeys: fc.uniqueArray(s.key, { maxLength: 4 }),
    secretKeys: fc.uniqueArray(s.key, { maxLength: 3 }),
    hostileUser: hostileUserName,
  }).chain(({ volumeNames, configMapKeys, secretKeys, hostileUser }) => {
    const names: Names = { volumes: volumeNames, configMapKeys, secretKeys };
    const someContainers = (min: number, max: number) =>
      fc.array(fc.boolean(), { minLength: min, maxLength: max }).chain((packaged) =>
        fc.tuple(...packaged.map((p) => container(s, names, p)))
      );
    return fc.record({
      name: s.subdomain,
      namespace: s.label,
      uid: s.uid,
      restartPolicy: fc.constantFrom("Always", "OnFailure", "Never"),
      podSecurity: s.pick(
        oneUser(
          s,
          fc.record({
            runAsUser: s.id,
            runAsNonRoot: fc.boolean(),
            fsGroup: s.id,
            supplementalGroups: fc.array(s.id, { maxLength: 2 }),
            windowsOptions: fc.record({ runAsUserName: s.userName }),
          }, { requiredKeys: ["runAsUser"] }),
        ),
        fc.option(
          fc.record({
            runAsUser: s.id,
            runAsNonRoot: fc.boolean(),
            fsGroup: s.id,
            supplementalGroups: fc.array(s.id, { maxLength: 2 }),
            windowsOptions: fc.record({ runAsUserName: s.userName }),
          }, { requiredKeys: [] }),
          { nil: undefined },
        ),
      ),
      initContainers: someContainers(0, 2),
      containers: someContainers(1, 3),
      duplicateNames: s.pick(fc.constant(false), fc.boolean()),
      volumes: volumes(s, names),
      configMapValues: fc.tuple(...configMapKeys.map(() => s.value)),
      secretValues: fc.tuple(...secretKeys.map(() => s.secretValue)),
    }).map((g) => {
      // Generated values are shared between shrinking steps: copy, never mutate them.
      const rename = (offset: number) => (c: V1Container, i: number) =>
        g.duplicateNames ? c : { ...c, name: `${c.name}-${offset + i}` };
      const initContainers = g.initContainers.map(rename(0));
      const containers = g.containers.map(rename(initContainers.length));
      const pod: V1Pod = {
        apiVersion: "v1",
        kind: "Pod",
        metadata: { name: g.name, namespace: g.namespace, uid: g.uid },
        spec: {
          restartPolicy: g.restartPolicy,
          securityContext: g.podSecurity,
          initContainers,
          containers,
          volumes: g.volumes,
        },
      };
      const configMap: V1ConfigMap = {
        metadata: { name: "cm" },
        data: Object.fromEntries(configMapKeys.map((k, i) => [k, g.configMapValues[i]])),
      };
      const secret: V1Secret = {
        metadata: { name: "sec" },
        data: Object.fromEntries(secretKeys.map((k, i) => [k, base64(g.secretValues[i])])),
      };
      const users = [...USERS, { name: hostileUser, uid: 1001, gid: 1001 }];
      const packages = new Map<string, PackageInfo>();
      for (const c of [...initContainers, ...containers]) {
        if (c.image === "pkgd") {
          packages.set(c.name, { name: "pkgd", unitText: PACKAGE_UNIT, unitName: "pkgd.service" });
        }
      }
      return {
        users,
        input: {
          pod,
          configMaps: new Map([["cm", configMap]]),
          secrets: new Map([["sec", secret]]),
          node: fuzzNode(users),
          packages,
          stateDir: STATE_DIR,
          allowedHostPaths: ALLOWED_HOST_PATHS,
          policy: FUZZ_POLICY,
        },
      };
    });
  });
}

/**
 * The node's policy in the fuzz tests: what the generated ids (the test node's accounts) need
 * besides the flags' defaults; what the policy refuses is tested in tests/plan/ and e2e.
 */
export const FUZZ_POLICY: SecurityPolicy = {
  ...DEFAULT_SECURITY_POLICY,
  allowedHostUsers: ["0", "1000", "1001", "1002", "65534"],
  allowedHostGroups: ["0", "1000", "1001", "1002", "65534"],
};

/** The test node, knowing `users`. */
export function fuzzNode(users: UserInfo[]): NodeFacts {
  return {
    name: "fuzz-node",
    hostname: "fuzz-node.example",
    internalIP: "10.0.0.2",
    externalIP: "198.51.100.2",
    apiServerHost: "198.51.100.1",
    apiServerPort: 6443,
    allocatable: { cpuMilli: 2000, memoryBytes: 4 * 1024 ** 3 },
    lookupUser: (k) => users.find((u) => (typeof k === "number" ? u.uid : u.name) === k),
    lookupGroup: (name) => users.find((u) => u.name === name)?.gid,
    groupName: (gid) => users.find((u) => u.gid === gid)?.name,
  };
}

/** A generator of pods whose every string is well-formed: the planner must accept them all. */
export const cleanCase: fc.Arbitrary<FuzzCase> = fuzzCase(CLEAN);
