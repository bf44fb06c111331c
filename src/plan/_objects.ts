/**
 * Reading ConfigMaps and Secrets of the input: lookups that honour `optional`, and their data
 * as bytes (Secret `data` is base64 in the API object; `stringData` only appears in manifests
 * that never went through the API server, which merges it into `data`).
 *
 * @module
 */
import type { V1ConfigMap, V1Secret } from "@kubernetes/client-node";
import { fail, type PodContext } from "./_context.ts";
import { OBJECT_DATA, shapeProblem } from "./_shape.ts";

/** Which kind of object a reference points at. */
export type SourceKind = "configMap" | "secret";

const encoder = new TextEncoder();

function decodeBase64(text: string): Uint8Array {
  const binary = atob(text.replace(/\s+/g, ""));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

/** A reference to a ConfigMap or Secret, and where the pod makes it. */
export interface ObjectReference {
  kind: SourceKind;
  name?: string;
  optional?: boolean;
  /** The referring field, for messages (`volume config`, `envFrom configMapRef`). */
  field: string;
  /** The container that refers to it; none for a volume. */
  container?: string;
}

/**
 * A referenced object, or undefined when it is missing and the reference is optional.
 *
 * @throws PodError naming the object when it is missing and required.
 */
export function lookupObject(
  ctx: PodContext,
  reference: ObjectReference,
): V1ConfigMap | V1Secret | undefined {
  const { kind, name, optional, field, container } = reference;
  const objects = kind === "configMap" ? ctx.input.configMaps : ctx.input.secrets;
  const found = name === undefined ? undefined : objects.get(name);
  if (found || optional) return found;
  throw fail(ctx, {
    container,
    what: `${field}: ${kind} "${name ?? ""}" not found in namespace ${ctx.namespace}`,
    todo: `create the ${kind}, or set optional: true on the reference`,
  });
}

/** Options of {@link objectData}. */
export interface ObjectDataOptions {
  kind: SourceKind;
  /** Only a ConfigMap's `data`: what env sees, as in the kubelet. Default false. */
  textOnly?: boolean;
}

/**
 * The object's entries as bytes: a ConfigMap's `data` (UTF-8) and, unless `textOnly`, its
 * `binaryData`; a Secret's `data` (base64-decoded) overlaid with `stringData`.
 */
export function objectData(
  ctx: PodContext,
  object: V1ConfigMap | V1Secret,
  options: ObjectDataOptions,
): Map<string, Uint8Array> {
  const { kind, textOnly = false } = options;
  const problem = shapeProblem(object, OBJECT_DATA, {
    path: `${kind} "${object.metadata?.name}"`,
  });
  if (problem) throw fail(ctx, { what: problem, todo: `fix the ${kind}` });
  const out = new Map<string, Uint8Array>();
  if (kind === "configMap") {
    const cm = object as V1ConfigMap;
    for (const [k, v] of Object.entries(cm.data ?? {})) out.set(k, encoder.encode(v));
    if (!textOnly) {
      for (const [k, v] of Object.entries(cm.binaryData ?? {})) {
        out.set(k, decodeData(ctx, kind, object, k, v));
      }
    }
  } else {
    const secret = object as V1Secret & { stringData?: Record<string, string> };
    for (const [k, v] of Object.entries(secret.data ?? {})) {
      out.set(k, decodeData(ctx, kind, object, k, v));
    }
    for (const [k, v] of Object.entries(secret.stringData ?? {})) out.set(k, encoder.encode(v));
  }
  return out;
}

function decodeData(
  ctx: PodContext,
  kind: SourceKind,
  object: V1ConfigMap | V1Secret,
  key: string,
  value: string,
): Uint8Array {
  try {
    return decodeBase64(value);
  } catch {
    throw fail(ctx, {
      what: `${kind} "${object.metadata?.name}" key "${key}" is not valid base64`,
      todo: "store the value base64-encoded (or use stringData)",
    });
  }
}
