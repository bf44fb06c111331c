/**
 * What the bench reads from the test machine besides the API: systemk's process, its units'
 * systemd timestamps and invocation ids, its journal.
 *
 * @module
 */
import type { CoreV1Api } from "@kubernetes/client-node";
import type { NodeEnv } from "../tests/e2e/_node_env.ts";

/** `/proc/<pid>` of a service's main process, as seen from the host. */
export async function serviceProcDir(env: NodeEnv, unit: string): Promise<string> {
  const out = await env.system.exec(["systemctl", "show", "-p", "MainPID", "--value", unit]);
  const pid = Number(out.stdout.trim());
  if (!pid) throw new Error(`${unit} has no main process`);
  return `${env.system.root}/proc/${pid}`;
}

/**
 * systemd's `us+utc` timestamp (`Wed 2026-11-25 11:30:00.123456 UTC`) as epoch ms with
 * microseconds; undefined for an empty one.
 */
export function parseSystemdTime(text: string): number | undefined {
  const m = /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)\.(\d{6}) UTC/.exec(text);
  if (!m) return undefined;
  return Date.parse(`${m[1]}T${m[2]}Z`) + Number(m[3]) / 1000;
}

/**
 * The given properties of every loaded unit matching `pattern`, by unit name
 * (`systemctl show` blocks).
 */
export async function unitProperties(
  env: NodeEnv,
  pattern: string,
  props: string[],
): Promise<Map<string, Record<string, string>>> {
  const out = await env.system.exec([
    "systemctl",
    "show",
    "--timestamp=us+utc",
    "-p",
    ["Id", ...props].join(","),
    pattern,
  ]);
  const units = new Map<string, Record<string, string>>();
  for (const block of out.stdout.split("\n\n")) {
    const fields: Record<string, string> = {};
    for (const line of block.split("\n")) {
      const eq = line.indexOf("=");
      if (eq > 0) fields[line.slice(0, eq)] = line.slice(eq + 1);
    }
    if (fields.Id) units.set(fields.Id, fields);
  }
  return units;
}

/** Journal lines of `unit` matching `pattern`, with their epoch ms times. */
export async function journalMatches(
  env: NodeEnv,
  unit: string,
  pattern: RegExp,
): Promise<{ at: number; message: string }[]> {
  const out = await env.system.exec(["journalctl", "--no-pager", "-o", "json", "-u", unit]);
  const found = [];
  for (const line of out.stdout.split("\n")) {
    if (!line.trim()) continue;
    const entry = JSON.parse(line) as { MESSAGE?: unknown; __REALTIME_TIMESTAMP?: string };
    const message = typeof entry.MESSAGE === "string" ? entry.MESSAGE : "";
    if (pattern.test(message)) {
      found.push({ at: Number(entry.__REALTIME_TIMESTAMP) / 1000, message });
    }
  }
  return found;
}

/** Resolves when every named node has condition Ready=True; throws after `timeoutMs`. */
export async function nodesReady(
  core: CoreV1Api,
  nodes: readonly string[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const list = await core.listNode();
    const ready = new Set(
      list.items.filter((n) =>
        n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")
      ).map((n) => n.metadata!.name!),
    );
    if (nodes.every((n) => ready.has(n))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`nodes ${nodes.join(", ")} not Ready after ${timeoutMs} ms`);
}
