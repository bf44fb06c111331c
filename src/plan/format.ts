/**
 * A plan as people read it (`systemk plan`): the pod's slice and each unit file under a
 * `# unit: <name>` header, the ephemeral containers left out and why, then every volume entry with its path, mode and owner, file contents
 * inline — except secret contents, shown as `<N bytes>` — then the hostPath checks the applier
 * will make.
 *
 * @module
 */
import type { PodPlan, VolumeEntry } from "./types.ts";

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function mode(m: number): string {
  return "0" + m.toString(8).padStart(3, "0");
}

function describe(entry: VolumeEntry): string {
  const owner = `owner ${entry.uid}:${entry.gid}`;
  switch (entry.kind) {
    case "dir":
      return `# dir: ${entry.path} (mode ${mode(entry.mode)}, ${owner})`;
    case "tmpfs": {
      const size = entry.sizeBytes === undefined ? "" : `, size ${entry.sizeBytes}`;
      return `# tmpfs: ${entry.path} (mode ${mode(entry.mode)}, ${owner}${size})`;
    }
    case "file":
      return `# file: ${entry.path} (mode ${
        mode(entry.mode)
      }, ${owner}, ${entry.content.length} bytes)`;
  }
}

function contents(content: Uint8Array, secret: boolean): string {
  if (secret) return `<${content.length} bytes>\n`;
  let text: string;
  try {
    text = decoder.decode(content);
  } catch {
    return `<${content.length} bytes, binary>\n`;
  }
  if (text === "" || text.endsWith("\n")) return text;
  return text + "\n# (no newline at end of file)\n";
}

/**
 * Formats a plan for humans and golden tests.
 *
 * @example Usage
 * ```ts
 * console.log(formatPlan(planPod(input)));
 * ```
 */
export function formatPlan(plan: PodPlan): string {
  let out = "";
  for (const unit of [plan.slice, ...plan.units]) {
    out += `# unit: ${unit.name}\n${unit.text}`;
    if (!unit.text.endsWith("\n")) out += "\n";
    out += "\n";
  }
  for (const { container, reason, message } of plan.unplanned) {
    out += `# not planned: ${container}: ${reason}: ${message}\n\n`;
  }
  out += `# volumes of ${plan.podDir}\n`;
  for (const entry of plan.volumes) {
    out += describe(entry) + "\n";
    if (entry.kind === "file") out += contents(entry.content, entry.secret === true);
  }
  for (const check of plan.hostPathChecks) {
    const type = check.type === "" ? "" : ` and be ${check.type}`;
    out += `# hostPath check: volume ${check.volume}: ${check.path} must stay allowed once ` +
      `resolved${type}\n`;
  }
  const { users, groups } = plan.podIds;
  if (users.length + groups.length > 0) {
    out += `# user records: users ${users.join(" ") || "-"}, groups ${groups.join(" ") || "-"}\n`;
  }
  for (const m of plan.claimMounts) {
    const type = m.type ? ` (${m.type})` : "";
    const subPaths = m.subPaths.map((p) => `, subPath ${p.path} pinned at ${p.mountPoint}`)
      .join("");
    const group = m.fsGroup ? `, fsGroup ${m.fsGroup.gid} (${m.fsGroup.changePolicy})` : "";
    out += `# persistentVolumeClaim: volume ${m.volume}: PersistentVolume ` +
      `${m.persistentVolume}, ${m.source} ${m.path}${type}${m.readOnly ? ", read-only" : ""}` +
      `${subPaths}${group}\n`;
  }
  return out;
}
