/**
 * D-Bus traffic between systemk and systemd, counted from `dbus-monitor --system` output: the
 * calls systemk makes (by member) and the signals systemd sends it (by member, systemk's own
 * units apart from all others).
 *
 * @module
 */

/** Counted messages of one monitoring window. */
export interface DbusCounts {
  /** Method calls from `agent` to systemd, by `Interface.Member`. */
  calls: Record<string, number>;
  /**
   * Signals from systemd, by `member` (for `PropertiesChanged` with the short name of the
   * interface that changed, `PropertiesChanged Unit`) plus `(systemk unit)` / `(other unit)` /
   * `(manager)`.
   */
  signals: Record<string, number>;
  /** Error replies to `agent`, by error name. */
  errors: Record<string, number>;
}

const HEADER =
  /^(method call|signal|method return|error) time=\S+ sender=(\S+) -> destination=(\S+)(.*)$/;

/**
 * Counts the messages in `dbus-monitor` text. `agent` is systemk's unique bus name; when
 * undefined it is taken to be the sender of the first `StartUnit` call.
 */
export function countDbus(text: string, agent?: string): DbusCounts {
  const lines = text.split("\n");
  const headers = lines.map((l, i) => ({ m: HEADER.exec(l), next: lines[i + 1] ?? "" }))
    .filter((h) => h.m !== null)
    .map(({ m, next }) => Object.assign(m!, { next }));
  agent ??= headers.find((m) => m[1] === "method call" && /member=StartUnit\b/.test(m[4]))?.[2];
  const counts: DbusCounts = { calls: {}, signals: {}, errors: {} };
  const add = (into: Record<string, number>, key: string) => into[key] = (into[key] ?? 0) + 1;
  for (const header of headers) {
    const [, type, sender, destination, rest] = header;
    const field = (name: string) => new RegExp(`\\b${name}=([^;\\s]+)`).exec(rest)?.[1] ?? "";
    if (type === "method call" && sender === agent && destination === "org.freedesktop.systemd1") {
      add(counts.calls, `${field("interface").split(".").at(-1)}.${field("member")}`);
    } else if (type === "signal" && field("path").startsWith("/org/freedesktop/systemd1")) {
      const path = field("path");
      const whose = path.startsWith("/org/freedesktop/systemd1/unit/systemk_2e")
        ? "systemk unit"
        : path.startsWith("/org/freedesktop/systemd1/unit/")
        ? "other unit"
        : "manager";
      // PropertiesChanged's first argument (the next line) names the interface that changed.
      const iface = field("member") === "PropertiesChanged"
        ? ` ${/string "([^"]*)"/.exec(header.next)?.[1].split(".").at(-1) ?? "?"}`
        : "";
      add(counts.signals, `${field("member")}${iface} (${whose})`);
    } else if (type === "error" && destination === agent) {
      add(counts.errors, field("error_name"));
    }
  }
  return counts;
}

/** Each count divided by `n` (per pod), rounded to one decimal. */
export function perPod(counts: Record<string, number>, n: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts).sort((a, b) => b[1] - a[1]).map((
      [k, v],
    ) => [k, Math.round(v / n * 10) / 10]),
  );
}
