/**
 * The "run it" command for a machine whose PID 1 is not systemd: boots a throwaway systemd
 * (the test harness's, over an overlay of `/`, host untouched), runs systemk's standalone mode
 * inside it with the sample manifests, shows the pods' status and logs, and cleans up.
 *
 *     deno task demo [manifest-dir]
 *
 * @module
 */
import { bootTestSystemd } from "../tests/harness/systemd.ts";

const repo = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
const manifests = Deno.args[0] ? await Deno.realPath(Deno.args[0]) : `${repo}/examples/standalone`;
const secondsToWatch = Number(Deno.env.get("DEMO_SECONDS") ?? 8);

console.log("demo: booting a throwaway systemd in namespaces ...");
const system = await bootTestSystemd({ name: "systemk-demo", binds: [manifests] });
try {
  // systemk runs as a service of the throwaway systemd, as it would on a real machine.
  const started = await system.exec([
    "systemd-run",
    "--unit=systemk",
    "--setenv=NO_COLOR=1",
    "deno",
    "run",
    "-A",
    `${repo}/main.ts`,
    "--pod-manifest-path",
    manifests,
    "--nodename",
    "demo",
  ]);
  if (started.code !== 0) throw new Error(`starting systemk failed: ${started.stderr}`);
  console.log(`demo: systemk runs as systemk.service; watching for ${secondsToWatch} s ...`);
  await new Promise((r) => setTimeout(r, secondsToWatch * 1000));

  console.log("\ndemo: what systemk printed (journalctl -u systemk):");
  console.log(
    (await system.exec(["journalctl", "--no-pager", "-o", "cat", "-u", "systemk"])).stdout,
  );
  console.log("demo: the pods' units (systemctl list-units 'systemk.*'):");
  const units = await system.exec(["systemctl", "list-units", "--no-pager", "--all", "systemk.*"]);
  console.log(units.stdout);
  console.log("demo: the pods' logs (journalctl -u 'systemk.*.service' -n 12):");
  const logs = await system.exec([
    "journalctl",
    "--no-pager",
    "-n",
    "12",
    "-u",
    "systemk.*.service",
  ]);
  console.log(logs.stdout);
} finally {
  console.log("demo: tearing the throwaway systemd down");
  await system.stop();
}
