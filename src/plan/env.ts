/**
 * A container's environment, built the way the kubelet builds it (`makeEnvironmentVariables`):
 * `envFrom` sources first (keys with `prefix`; keys that cannot be variable names skipped),
 * then `env` in order — literal values `$(VAR)`-expanded against what is defined so far and
 * the node-provided variables, `valueFrom` values taken as they are — then the node-provided
 * variables the pod did not set itself.
 *
 * Order is deterministic (the kubelet's is a Go map's): insertion order, a later definition of
 * the same name replacing the value in place; envFrom keys in sorted order per source.
 *
 * Values are marked `secret` when they come from a Secret or expand a secret variable: the
 * planner keeps them out of the world-readable unit file.
 *
 * @module
 */
import type { V1Container } from "@kubernetes/client-node";
import { fail, type PodContext } from "./_context.ts";
import { lookupObject, objectData, type SourceKind } from "./_objects.ts";
import { fieldRefValue, podAddresses, resourceFieldValue } from "./downward.ts";
import { expand, expandParts } from "./expansion.ts";
import type { ExecArgument } from "../unit/mod.ts";

// systemd's `env_name_is_valid` (stricter than Kubernetes' relaxed names): what a unit's
// Environment= can set. envFrom keys outside it are skipped, as the kubelet skips invalid keys.
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// ignoreBOM: a value starting with U+FEFF keeps it (the kubelet passes the string as it is).
const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Variables systemk provides to every container (the kubelet's "service env" role): node
 * addresses, the hostname (host networking) and the real API server address (omitted when
 * unknown).
 */
export function nodeEnvironment(ctx: PodContext): Map<string, string> {
  const node = ctx.input.node;
  const env = new Map<string, string>([
    ["SYSTEMK_NODE_INTERNAL_IP", node.internalIP],
    ["SYSTEMK_NODE_EXTERNAL_IP", podAddresses(node).podIP],
    ["HOSTNAME", node.hostname],
  ]);
  if (node.apiServerHost !== undefined && node.apiServerPort !== undefined) {
    env.set("KUBERNETES_SERVICE_HOST", node.apiServerHost);
    env.set("KUBERNETES_SERVICE_PORT", String(node.apiServerPort));
  }
  return env;
}

function text(
  ctx: PodContext,
  container: string,
  kind: SourceKind,
  name: string,
  key: string,
  bytes: Uint8Array,
): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw fail(ctx, {
      container,
      what:
        `${kind} "${name}" key "${key}" is not UTF-8 text, which an environment variable must be`,
      todo: "mount it as a volume instead",
    });
  }
}

/** Resolves a `configMapKeyRef`/`secretKeyRef`; undefined when optional and missing. */
function keyRef(
  ctx: PodContext,
  container: string,
  kind: SourceKind,
  ref: { name?: string; key: string; optional?: boolean },
  variable: string,
): string | undefined {
  const field = `env ${variable}: ${kind}KeyRef`;
  const object = lookupObject(ctx, {
    kind,
    name: ref.name,
    optional: ref.optional,
    field,
    container,
  });
  if (!object) return undefined;
  const bytes = objectData(ctx, object, { kind, textOnly: true }).get(ref.key);
  if (bytes === undefined) {
    if (ref.optional) return undefined;
    throw fail(ctx, {
      container,
      what: `${field}: key "${ref.key}" not found in ${kind} "${ref.name}"`,
      todo: `add the key to the ${kind}, or set optional: true on the reference`,
    });
  }
  return text(ctx, container, kind, ref.name ?? "", ref.key, bytes);
}

/** One environment variable's value, and whether it holds Secret data. */
export interface EnvValue {
  value: string;
  secret: boolean;
}

/**
 * The container's final environment, in order.
 *
 * @throws PodError for missing required ConfigMaps/Secrets/keys, unsupported fieldRefs.
 */
export function containerEnvironment(
  ctx: PodContext,
  container: V1Container,
): Map<string, EnvValue> {
  const env = new Map<string, EnvValue>();
  const provided = nodeEnvironment(ctx);
  let tainted = false;
  const lookup = (name: string) => {
    const own = env.get(name);
    if (own?.secret) tainted = true;
    return own?.value ?? provided.get(name);
  };

  for (const source of container.envFrom ?? []) {
    const kind: SourceKind = source.configMapRef ? "configMap" : "secret";
    const ref = source.configMapRef ?? source.secretRef;
    if (!ref) continue;
    const field = `envFrom ${kind}Ref`;
    const object = lookupObject(ctx, {
      kind,
      name: ref.name,
      optional: ref.optional,
      field,
      container: container.name,
    });
    if (!object) continue;
    const data = objectData(ctx, object, { kind, textOnly: true });
    for (const key of [...data.keys()].sort()) {
      const name = (source.prefix ?? "") + key;
      if (!ENV_NAME.test(name)) continue;
      const value = text(ctx, container.name, kind, ref.name ?? "", key, data.get(key)!);
      env.set(name, { value, secret: kind === "secret" });
    }
  }

  for (const variable of container.env ?? []) {
    let value: string | undefined = variable.value ?? "";
    const from = variable.valueFrom;
    tainted = false;
    if (value !== "") {
      value = expand(value, lookup);
    } else if (from?.configMapKeyRef) {
      value = keyRef(ctx, container.name, "configMap", from.configMapKeyRef, variable.name);
    } else if (from?.secretKeyRef) {
      value = keyRef(ctx, container.name, "secret", from.secretKeyRef, variable.name);
      tainted = true;
    } else if (from?.fieldRef) {
      value = fieldRefValue(ctx, from.fieldRef.fieldPath, { container: container.name });
    } else if (from?.resourceFieldRef) {
      value = resourceFieldValue(ctx, from.resourceFieldRef, { container });
    } else if (from) {
      throw fail(ctx, {
        container: container.name,
        what: `env ${variable.name}: unsupported valueFrom ${Object.keys(from).join(", ")}`,
        todo: "use configMapKeyRef, secretKeyRef, fieldRef or resourceFieldRef",
      });
    }
    if (value !== undefined) env.set(variable.name, { value, secret: tainted });
  }

  for (const [name, value] of provided) {
    if (!env.has(name)) env.set(name, { value, secret: false });
  }
  return env;
}

/** Words after `$(VAR)` expansion, and whether any expanded variable holds Secret data. */
export interface ExpandedWords {
  words: string[];
  secret: boolean;
}

/**
 * Expands `$(VAR)` in each word against the final environment (command, args, subPathExpr).
 * `secret` tells the caller to keep the words out of error messages, which end up in the pod's
 * status and Events.
 */
export function expandWords(
  words: readonly string[],
  env: ReadonlyMap<string, EnvValue>,
): ExpandedWords {
  let secret = false;
  const lookup = (name: string) => {
    const found = env.get(name);
    if (found?.secret) secret = true;
    return found?.value;
  };
  return { words: words.map((w) => expand(w, lookup)), secret };
}

/**
 * `command`/`args` words with `$(VAR)` expanded as {@link expandWords} does, except that a
 * variable holding Secret data stays a reference, which systemd fills in from the container's
 * root-only environment file when the command starts: the value reaches neither the unit file
 * nor systemd's properties (the running process has it in its argv, as in any runtime).
 */
export function expandArguments(
  words: readonly string[],
  env: ReadonlyMap<string, EnvValue>,
): ExecArgument[] {
  return words.map((word) => {
    const parts = expandParts(word, (name) => {
      const found = env.get(name);
      return found?.secret ? { variable: name } : found?.value;
    });
    return parts.length === 1 && typeof parts[0] === "string" ? parts[0] : parts;
  });
}

/**
 * Text of an `EnvironmentFile=` setting exactly the given variables: every value double-quoted,
 * with `"`, `\\`, `` ` `` and `$` backslash-escaped — the only escapes systemd's env-file
 * parser (env-file.c) honours inside double quotes, where everything else, newlines included,
 * is literal. It performs no `$VAR` or `%` expansion. Names must already be valid.
 */
export function environmentFile(variables: Iterable<[string, string]>): string {
  let out = "";
  for (const [name, value] of variables) {
    out += `${name}="${value.replace(/["\\`$]/g, (c) => "\\" + c)}"\n`;
  }
  return out;
}
