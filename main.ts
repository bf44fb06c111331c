/**
 * systemk: a Kubernetes node agent that runs pods as systemd units.
 *
 * @module
 */
if (import.meta.main) {
  const { run } = await import("./src/cli/mod.ts");
  Deno.exit(await run(Deno.args));
}
