/**
 * The types of the pod fields the planner reads, checked before it reads them. The API server
 * guarantees them; manifests (standalone mode, `systemk plan`) do not, and a `command: "sh -c
 * x"` or `env: {A: b}` there must become a PodError naming the field, not a TypeError that
 * stops the pod's worker. Fields the planner does not read are not checked; `null` counts as
 * a wrong type (the message says what was expected).
 *
 * @module
 */

/**
 * What a field must hold: a primitive (`string!`: one that must be present), an object with
 * known fields, a list, or a map of primitives.
 */
export type Shape =
  | "string"
  | "string!"
  | "number"
  | "boolean"
  | "quantity"
  | { readonly [field: string]: Shape }
  | readonly [Shape]
  | { readonly map: "string" | "quantity" };

const STRINGS: Shape = ["string"];
const NUMBERS: Shape = ["number"];

const KEY_REF: Shape = { name: "string", key: "string!", optional: "boolean" };
const OBJECT_REF: Shape = { name: "string", optional: "boolean" };
const ITEMS: Shape = [{ key: "string!", path: "string!", mode: "number" }];
const FIELD_REF: Shape = { fieldPath: "string!" };
const RESOURCE_REF: Shape = { containerName: "string", resource: "string!", divisor: "quantity" };
const DOWNWARD_ITEMS: Shape = [{
  path: "string!",
  mode: "number",
  fieldRef: FIELD_REF,
  resourceFieldRef: RESOURCE_REF,
}];

const RESOURCES: Shape = { limits: { map: "quantity" }, requests: { map: "quantity" } };

const SECURITY: Record<string, Shape> = {
  runAsUser: "number",
  runAsGroup: "number",
  runAsNonRoot: "boolean",
  windowsOptions: { runAsUserName: "string" },
};

const CONTAINER: Shape = {
  name: "string!",
  image: "string",
  command: STRINGS,
  args: STRINGS,
  workingDir: "string",
  restartPolicy: "string",
  env: [{
    name: "string!",
    value: "string",
    valueFrom: {
      configMapKeyRef: KEY_REF,
      secretKeyRef: KEY_REF,
      fieldRef: FIELD_REF,
      resourceFieldRef: RESOURCE_REF,
    },
  }],
  envFrom: [{ prefix: "string", configMapRef: OBJECT_REF, secretRef: OBJECT_REF }],
  volumeMounts: [{
    name: "string!",
    mountPath: "string!",
    subPath: "string",
    subPathExpr: "string",
    readOnly: "boolean",
  }],
  resources: RESOURCES,
  securityContext: {
    ...SECURITY,
    allowPrivilegeEscalation: "boolean",
    privileged: "boolean",
    readOnlyRootFilesystem: "boolean",
    capabilities: { add: STRINGS, drop: STRINGS },
  },
};

/** An ephemeral container: a container's fields, its target and whether it wants stdin. */
const EPHEMERAL_CONTAINER: Shape = {
  ...(CONTAINER as Record<string, Shape>),
  targetContainerName: "string",
  stdin: "boolean",
  tty: "boolean",
};

/** The fields of a Pod the planner reads. */
export const POD: Shape = {
  metadata: {
    name: "string",
    namespace: "string",
    uid: "string",
    labels: { map: "string" },
    annotations: { map: "string" },
  },
  spec: {
    restartPolicy: "string",
    terminationGracePeriodSeconds: "number",
    resources: RESOURCES,
    securityContext: { ...SECURITY, fsGroup: "number", supplementalGroups: NUMBERS },
    initContainers: [CONTAINER],
    containers: [CONTAINER],
    ephemeralContainers: [EPHEMERAL_CONTAINER],
    volumes: [{
      name: "string!",
      hostPath: { path: "string!", type: "string" },
      emptyDir: { medium: "string", sizeLimit: "quantity" },
      configMap: { name: "string", items: ITEMS, defaultMode: "number", optional: "boolean" },
      secret: { secretName: "string", items: ITEMS, defaultMode: "number", optional: "boolean" },
      downwardAPI: { items: DOWNWARD_ITEMS, defaultMode: "number" },
      projected: {
        defaultMode: "number",
        sources: [{
          configMap: { name: "string", items: ITEMS, optional: "boolean" },
          secret: { name: "string", items: ITEMS, optional: "boolean" },
          downwardAPI: { items: DOWNWARD_ITEMS },
          serviceAccountToken: { path: "string!" },
        }],
      },
    }],
  },
};

/** The fields of a ConfigMap or Secret the planner reads. */
export const OBJECT_DATA: Shape = {
  data: { map: "string" },
  binaryData: { map: "string" },
  stringData: { map: "string" },
};

function describe(shape: Shape): string {
  if (shape === "quantity") return "a quantity (string or number)";
  if (typeof shape === "string") return `a ${shape.replace("!", "")}`;
  if (Array.isArray(shape)) return "a list";
  return "an object";
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Options of {@link shapeProblem}. */
export interface ShapeProblemOptions {
  /** How a problem names `value`: `pod`, `ConfigMap "settings"`. */
  path: string;
}

/**
 * Where `value` does not have `shape`: `<path> must be <what>, not <what it is>`; undefined when
 * it does. Absent (undefined) fields are fine unless marked `!`.
 *
 * @example Usage
 * ```ts
 * shapeProblem({ command: "sh" }, { command: ["string"] }, { path: "container" });
 * // "container.command must be a list, not a string"
 * ```
 */
export function shapeProblem(
  value: unknown,
  shape: Shape,
  options: ShapeProblemOptions,
): string | undefined {
  return problemAt(value, shape, options.path);
}

/** {@link shapeProblem}, recursing with the path as a plain string. */
function problemAt(value: unknown, shape: Shape, path: string): string | undefined {
  if (value === undefined) return undefined;
  const wrong = () => `${path} must be ${describe(shape)}, not ${typeOf(value)}`;
  if (shape === "quantity") {
    return typeof value === "string" || typeof value === "number" ? undefined : wrong();
  }
  if (typeof shape === "string") {
    const expected = shape.replace("!", "");
    const actual: string = typeof value;
    return actual === expected ? undefined : wrong();
  }
  if (Array.isArray(shape)) {
    if (!Array.isArray(value)) return wrong();
    for (let i = 0; i < value.length; i++) {
      // Holes and undefined entries are wrong in a list: only fields may be absent.
      const problem = value[i] === undefined
        ? `${path}[${i}] must be ${describe(shape[0])}, not undefined`
        : problemAt(value[i], shape[0], `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (!isRecord(value)) return wrong();
  if ("map" in shape && typeof shape.map === "string") {
    for (const [k, v] of Object.entries(value)) {
      const problem = v === undefined
        ? `${path}[${JSON.stringify(k)}] must be ${describe(shape.map)}, not undefined`
        : problemAt(v, shape.map, `${path}[${JSON.stringify(k)}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  for (const [field, fieldShape] of Object.entries(shape as Record<string, Shape>)) {
    if (value[field] === undefined && fieldShape === "string!") {
      return `${path}.${field} is missing`;
    }
    const problem = problemAt(value[field], fieldShape, `${path}.${field}`);
    if (problem) return problem;
  }
  return undefined;
}
