/**
 * Command-line entry: parses flags and dispatches to a mode.
 *
 * @module
 */
import { parseFlags, usage, UsageError } from "./flags.ts";
import { VERSION } from "../version.ts";
import { configureLogging } from "../log/mod.ts";
import { runCommand } from "../process/mod.ts";

/** Runs systemk with `args`; resolves with the process exit code. */
export async function run(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(usage());
    return 0;
  }
  let parsed;
  try {
    parsed = parseFlags(args);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`systemk: ${e.message}\n\n${usage()}`);
    return 2;
  }
  const { config, positionals } = parsed;
  configureLogging({ level: config.logLevel, format: config.logFormat });
  const [command, ...rest] = positionals;
  switch (command) {
    case "version":
      console.log(await versionText());
      return 0;
    case "plan": {
      const { planCommand } = await import("./plan.ts");
      return await planCommand(config, rest);
    }
    case undefined:
      break;
    default:
      console.error(`systemk: unknown command "${command}"\n\n${usage()}`);
      return 2;
  }
  if (config.kubeconfig ?? Deno.env.get("KUBECONFIG")) {
    const { runNode } = await import("./node.ts");
    return await runNode(config);
  }
  if (config.podManifestPath) {
    const { runStandalone } = await import("./standalone.ts");
    return await runStandalone(config);
  }
  console.error(
    "systemk: give --kubeconfig (node mode) or --pod-manifest-path (standalone mode)\n\n" +
      usage(),
  );
  return 2;
}

async function versionText(): Promise<string> {
  const commit = await runCommand(
    ["git", "-C", new URL("../..", import.meta.url).pathname, "rev-parse", "--short", "HEAD"],
  ).then((o) => o.success ? o.stdout.trim() : "unknown").catch(() => "unknown");
  return [
    `systemk ${VERSION}`,
    `git commit ${commit}`,
    `deno ${Deno.version.deno}`,
    `v8 ${Deno.version.v8}`,
    `typescript ${Deno.version.typescript}`,
  ].join("\n");
}
