/**
 * Argv words and environment values reach a container's process byte for byte, for the unit
 * codec's hostile random strings (src/unit/_test_arbitraries.ts): unicode, controls, `$`, `%`,
 * `;`, quotes, backslashes, line breaks, `[Section]` text. Environment values both plain
 * (`Environment=`) and from a Secret (`secretKeyRef`, through the root-only
 * `EnvironmentFile=`); argv words of `command` alone, and of `args`/`command` combined with a
 * package unit's own `ExecStart=` words (which systemd still expands). The whole path is real:
 * the planner writes the unit, the runtime installs and starts it over D-Bus, systemd 252
 * parses it and execs the process, which copies its own /proc/<pid>/cmdline and
 * /proc/<pid>/environ into an emptyDir. Many values share one unit, so a few units carry
 * hundreds of values.
 *
 * This file is the one place for argv and environment exactness of pods; `$(VAR)` expansion
 * and the env sources' precedence are tests/fuzz/systemd_fuzz_test.ts's.
 *
 * @module
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { V1Container, V1Pod, V1Secret } from "@kubernetes/client-node";
import { cleanString } from "../../src/unit/_test_arbitraries.ts";
import { emptyDirPath, SYSTEM_TEST, withPodSystem } from "./_pods.ts";

const CONTAINERS = 4;
const PER_CONTAINER = 90;
/** Quotes, a backslash, `$` words Kubernetes and systemd must both leave, `%`, a tab, a line. */
const WEIRD = `a "quoted" 'single' \\back $HOME $(NOT) 100% %n tab\there\nnew line ünï`;
/** Strings that have broken escaping before, or easily could; always included. */
const FIXED = [
  "",
  " ",
  "$",
  "$$",
  "$(V0)",
  "${HOME}",
  "%n",
  "%%",
  ";",
  "\\;",
  "\\",
  '"',
  "'",
  "a\nb",
  "\r\n",
  "\t",
  "\x01\x1b\x7f",
  "[Service]",
  "\n[Unit]\nExecStart=/bin/evil",
  "ExecStart=",
  "ünï😀\u2028\u0085",
  "\\x41\\n\\u00e9\\\n",
  WEIRD,
  // Every character the EnvironmentFile= parser treats specially.
  "hunter2 $x ${y} \"q\" 's' `cmd` \\back\\\nline2 %n # not a comment\n",
];
/** Copies the process's own argv and environment, as the kernel holds them, to /out. */
const SCRIPT = 'cat /proc/$$/cmdline > "/out/$0.argv"; cat /proc/$$/environ > "/out/$0.env"';

/** Kubernetes expands `$(VAR)` in command, args and env values; `$$` keeps a `$` literal. */
const literal = (s: string) => s.replaceAll("$", () => "$$");

const encoder = new TextEncoder();
/** The bytes of NUL-terminated strings, as /proc/<pid>/cmdline and environ hold them. */
const nulTerminated = (words: string[]) => encoder.encode(words.map((w) => `${w}\0`).join(""));

/** The NUL-terminated entries of an environ file, as byte strings for exact comparison. */
function entries(bytes: Uint8Array): Set<string> {
  const out = new Set<string>();
  let start = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0) {
      out.add(Array.from(bytes.subarray(start, i), (b) => b.toString(16)).join(","));
      start = i + 1;
    }
  }
  return out;
}
const asEntry = (text: string) => Array.from(encoder.encode(text), (b) => b.toString(16)).join(",");
/** A Secret's `data` value: the text's UTF-8 bytes, base64. */
const base64 = (text: string) =>
  btoa(Array.from(encoder.encode(text), (b) => String.fromCharCode(b)).join(""));

/** Package units by image: one whose executable `args` keep, one whose words `command` keeps. */
const PACKAGES = {
  "fakepkg-args": { name: "fakepkg", unitText: "[Service]\nExecStart=/bin/sh -c 'exit 1'\n" },
  "fakepkg-command": {
    name: "fakepkg",
    // Words systemd must still expand after `command` replaces the first one.
    unitText: `[Service]
Environment=PKGVAR=from-package
ExecStart=/bin/false -c "printf %%s:%%s \${PKGVAR} \\"$$1\\" > /out/pkgcommand" arg0 "two words"
`,
  },
};
const PACKAGE_CONTAINERS: V1Container[] = [
  {
    name: "pkg-args",
    image: "fakepkg-args",
    args: ["-c", 'printf %s "$1" > /out/pkgargs', "sh", WEIRD],
    volumeMounts: [{ name: "out", mountPath: "/out" }],
  },
  {
    name: "pkg-command",
    image: "fakepkg-command",
    command: ["/bin/sh"],
    volumeMounts: [{ name: "out", mountPath: "/out" }],
  },
];

Deno.test({
  name: "random argv words and env values reach the process byte-exact",
  ...SYSTEM_TEST,
  async fn() {
    const seed = Number(Deno.env.get("SYSTEMD_TEST_SEED") ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`  SYSTEMD_TEST_SEED=${seed}`);
    const words = [
      ...FIXED,
      // cleanString, not representableString: a Unicode noncharacter (U+FDD0, U+FFFF, ...) in an
      // argv word reaches the process too, but then systemd 252 refuses to send the unit's
      // Service properties over D-Bus (its UTF-8 check rejects noncharacters; GetAll answers
      // InvalidArgs), so the runtime cannot read the container's state (a known limit).
      ...fc.sample(cleanString, { numRuns: CONTAINERS * PER_CONTAINER, seed }),
    ];
    const values = [
      ...FIXED,
      ...fc.sample(cleanString, { numRuns: CONTAINERS * PER_CONTAINER, seed: seed + 1 }),
    ];
    const secretValues = [
      ...FIXED,
      ...fc.sample(cleanString, { numRuns: CONTAINERS * PER_CONTAINER, seed: seed + 2 }),
    ];
    const secret: V1Secret = { metadata: { name: "exact" }, data: {} };
    const share = (list: string[], i: number) =>
      list.slice(
        Math.floor((i * list.length) / CONTAINERS),
        Math.floor(((i + 1) * list.length) / CONTAINERS),
      );
    const containers: V1Container[] = [];
    const expected = new Map<string, { argv: string[]; env: string[] }>();
    for (let i = 0; i < CONTAINERS; i++) {
      const name = `c${i}`;
      const argv = ["/bin/sh", "-c", SCRIPT, name, ...share(words, i)];
      const env = share(values, i).map((v, j) => ({ name: `V${j}`, value: v }));
      // Secret values are not expanded: they reach the process exactly as stored.
      const fromSecret = share(secretValues, i).map((v, j) => {
        secret.data![`k${i}_${j}`] = base64(v);
        return { name: `S${j}`, key: `k${i}_${j}`, value: v };
      });
      containers.push({
        name,
        image: "/bin/sh",
        command: argv.map(literal),
        env: [
          ...env.map((e) => ({ name: e.name, value: literal(e.value) })),
          ...fromSecret.map((e) => ({
            name: e.name,
            valueFrom: { secretKeyRef: { name: "exact", key: e.key } },
          })),
        ],
        volumeMounts: [{ name: "out", mountPath: "/out" }],
      });
      expected.set(name, { argv, env: [...env, ...fromSecret].map((e) => `${e.name}=${e.value}`) });
    }
    const manifest: V1Pod = {
      metadata: { name: "exact" },
      spec: {
        restartPolicy: "Never",
        containers: [...containers, ...PACKAGE_CONTAINERS],
        volumes: [{ name: "out", emptyDir: {} }],
      },
    };

    await withPodSystem(async (s) => {
      const started = performance.now();
      const pod = s.run({ pods: [manifest], configMaps: [], secrets: [secret] });
      const status = await s.statusWhen(
        pod,
        (st) => st.phase === "Succeeded" || st.phase === "Failed",
      );
      assert.equal(status.phase, "Succeeded", await s.describe());
      console.log(
        `  ${words.length} argv words, ${values.length} env values, ${secretValues.length} ` +
          `Secret env values in ${CONTAINERS} units: ` +
          `ran in ${(performance.now() - started).toFixed(0)} ms`,
      );
      const out = emptyDirPath(s, pod, "out");
      for (const [name, want] of expected) {
        const argv = await Deno.readFile(`${out}/${name}.argv`);
        assert.deepEqual(argv, nulTerminated(want.argv), `argv of ${name} (seed ${seed})`);
        const env = entries(await Deno.readFile(`${out}/${name}.env`));
        for (const entry of want.env) {
          assert.ok(env.has(asEntry(entry)), `${name}: ${JSON.stringify(entry)} (seed ${seed})`);
        }
      }
      // `args` keep the package's executable; `command` keeps the package's other words.
      assert.equal(await Deno.readTextFile(`${out}/pkgargs`), WEIRD);
      assert.equal(await Deno.readTextFile(`${out}/pkgcommand`), "from-package:two words");
    }, { packages: PACKAGES });
  },
});
