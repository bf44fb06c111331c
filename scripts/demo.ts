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
  const agent = system.spawn([
    "deno",
    "run",
    "-A",
    `${repo}/main.ts`,
    "--pod-manifest-path",
    manifests,
    "--nodename",
    "demo",
  ]);
  const output = agent.stdout.pipeThrough(new TextDecoderStream());
  const printing = (async () => {
    for await (const chunk of output) Deno.stdout.writeSync(new TextEncoder().encode(chunk));
  })();
  agent.stderr.pipeTo(Deno.stderr.writable, { preventClose: true }).catch(() => {});
  await new Promise((r) => setTimeout(r, secondsToWatch * 1000));

  console.log("\ndemo: systemk's units (systemctl list-units 'systemk.*'):");
  const units = await system.exec(["systemctl", "list-units", "--no-pager", "--all", "systemk.*"]);
  console.log(units.stdout);
  console.log("demo: their logs (journalctl -u 'systemk.*' -n 15):");
  const logs = await system.exec(["journalctl", "--no-pager", "-n", "15", "-u", "systemk.*"]);
  console.log(logs.stdout);

  agent.kill("SIGTERM");
  await agent.status;
  await printing;
} finally {
  console.log("demo: tearing the throwaway systemd down");
  await system.stop();
}
