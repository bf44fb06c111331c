/**
 * Requests counted at the apiserver, from its audit log (JSON lines, `Metadata` level, written
 * when the test cluster starts with `auditLog: true`). Unlike `apiserver_request_total`, each
 * event names its user, so one node's requests can be told from everyone else's.
 *
 * @module
 */

/** One request, as far as counting goes. */
export interface Request {
  user: string;
  verb: string;
  /** `resource` or `resource/subresource` (`pods/status`), or the non-resource path. */
  resource: string;
  namespace?: string;
  name?: string;
  /** HTTP status code of the response (0 for a watch still streaming). */
  code: number;
  /** Epoch milliseconds (microsecond precision) the apiserver received the request. */
  received: number;
  /** Epoch milliseconds of the event's stage: completion, or a watch's response start. */
  stageAt: number;
}

interface AuditEvent {
  stage?: string;
  verb?: string;
  requestURI?: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
}

/**
 * The request an audit line stands for, or undefined when the line does not count: each
 * request counts once, when it completes, except a watch, which counts when its response
 * starts (it may stream for the rest of the run).
 */
export function parseAuditLine(line: string): Request | undefined {
  if (!line.trim()) return undefined;
  const e = JSON.parse(line) as AuditEvent;
  const watch = e.verb === "watch";
  if (e.stage !== (watch ? "ResponseStarted" : "ResponseComplete")) return undefined;
  const ref = e.objectRef;
  const resource = ref?.resource
    ? (ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource)
    : (e.requestURI ?? "").split("?")[0];
  return {
    user: e.user?.username ?? "",
    verb: e.verb ?? "",
    resource,
    namespace: ref?.namespace,
    name: ref?.name,
    code: e.responseStatus?.code ?? 0,
    received: Date.parse(e.requestReceivedTimestamp ?? "") +
      microFraction(e.requestReceivedTimestamp),
    stageAt: Date.parse(e.stageTimestamp ?? "") + microFraction(e.stageTimestamp),
  };
}

/** The sub-millisecond part of an RFC 3339 time with microseconds, in ms (Date.parse drops it). */
function microFraction(time: string | undefined): number {
  const digits = /\.(\d+)Z$/.exec(time ?? "")?.[1] ?? "";
  return digits.length > 3 ? Number(`0.${digits.slice(3)}`) : 0;
}

/** Reads every counted request of an audit log file. */
export async function readAudit(path: string): Promise<Request[]> {
  const text = await Deno.readTextFile(path);
  return text.split("\n").map(parseAuditLine).filter((r): r is Request => r !== undefined);
}

/** `system:node:<name>` → `<name>`; undefined for other users. */
export function nodeOf(user: string): string | undefined {
  return user.startsWith("system:node:") ? user.slice("system:node:".length) : undefined;
}

/**
 * Requests received in `[from, to)` (epoch ms) whose user passes `who`, counted by
 * `"<verb> <resource>"` (plus ` → <code>` for refused or failed ones), most frequent first.
 */
export function countByVerb(
  requests: readonly Request[],
  who: (user: string) => boolean,
  from: number,
  to: number,
): Record<string, number> {
  const counts = new Map<string, number>();
  for (const r of requests) {
    if (r.received < from || r.received >= to || !who(r.user)) continue;
    const key = `${r.verb} ${r.resource}${r.code >= 400 ? ` → ${r.code}` : ""}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1]));
}

/** Sum of a {@link countByVerb} result. */
export function total(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
