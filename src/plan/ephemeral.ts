/**
 * Ephemeral containers (`kubectl debug POD --image=<package or path> -- CMD`), as the kubelet
 * runs them: added to a running pod through the `ephemeralcontainers` subresource, started at
 * once (initialization or not), never restarted, never changed.
 *
 * Without `targetContainerName` one is planned as any container of the pod: its own sandbox,
 * the pod's `securityContext` and its own, its `volumeMounts`. With one (`--target`), where the
 * kubelet shares the target's process namespace, systemk enters the target (src/plan/enter.ts):
 * the unit's root is the target's mount namespace (its volumes, private /tmp, hidden state
 * directory, read-only system: the target's sandbox, which the unit therefore does not set up
 * again), with the target's identity and privilege limits unless the ephemeral container's own
 * `securityContext` says otherwise. Units have no standard input, so one that asks for it
 * (`kubectl debug -i`) is refused with a reason rather than run with nothing to read.
 *
 * @module
 */
import type { V1Container, V1EphemeralContainer } from "@kubernetes/client-node";
import { CONFIG_ERROR, type PodContext, where } from "./_context.ts";
import { identitySettings, rootSettings, type ServiceSetting } from "./enter.ts";
import type { EffectiveSecurity } from "./security.ts";
import type { TargetContainer, UnplannedContainer } from "./types.ts";

/** Keys of the identity a container runs as. */
const IDENTITY_KEYS = new Set(["User", "Group", "SupplementaryGroups"]);

/**
 * Why an ephemeral container cannot be planned now, if it cannot: it asks for standard input,
 * names a target the pod does not have, mounts volumes into a target's namespace, or its target
 * is not running (a later try may succeed).
 *
 * @param ctx The pod.
 * @param container The ephemeral container.
 * @return The reason and message its status shows, or undefined.
 */
export function ephemeralProblem(
  ctx: PodContext,
  container: V1EphemeralContainer,
): UnplannedContainer | undefined {
  const problem = (what: string, todo: string, reason = CONFIG_ERROR, retry = false) => ({
    container: container.name,
    reason,
    message: `${where(ctx, container.name)}: ${what}; ${todo}`,
    retry,
  });
  if (container.stdin) {
    return problem(
      "stdin is true (kubectl debug -i), but systemk runs containers as systemd units, " +
        "which have no standard input",
      `add the ephemeral container without -i/-t and read its output with kubectl logs -c ${container.name}`,
    );
  }
  const target = container.targetContainerName;
  if (target === undefined || target === "") return undefined;
  const regular = [...(ctx.spec.initContainers ?? []), ...ctx.spec.containers];
  if (!regular.some((c) => c.name === target)) {
    return problem(
      `targetContainerName "${target}" is not a container of the pod`,
      "target one of the pod's containers",
    );
  }
  if ((container.volumeMounts ?? []).length > 0) {
    return problem(
      "volumeMounts cannot be given with targetContainerName: the container runs in its " +
        "target's mount namespace and sees the target's volumes there",
      "leave volumeMounts out, or leave the target out",
    );
  }
  if (!ctx.input.targets?.has(container.name)) {
    return problem(
      `its target container "${target}" is not running`,
      "it starts once the target runs",
      "CreateContainerError",
      true,
    );
  }
  return undefined;
}

/** What {@link enteredSettings} puts an ephemeral container into. */
export interface EnteredSettingsOptions {
  /**
   * The container's effective security (the pod's `securityContext` and its own): used where
   * its own `securityContext` sets the identity or the privileges.
   */
  security: EffectiveSecurity;
  /** The running target container, as systemd reports its unit. */
  target: TargetContainer;
}

/**
 * The settings that put an ephemeral container into its running target: the target's root
 * and umask, its working directory unless the container has its own, and its identity and
 * privilege limits unless the container's own `securityContext` sets them (`runAsUser`,
 * `runAsGroup` or `windowsOptions.runAsUserName` for the identity; `privileged`, `capabilities`
 * or `allowPrivilegeEscalation` for the privileges: `security` then says what they are).
 *
 * @param container The ephemeral container's spec.
 * @param options Its effective security and the running target.
 * @return Raw settings (values not yet escaped for a unit file).
 *
 * @example Usage
 * ```ts
 * import { enteredSettings } from "./ephemeral.ts";
 * import assert from "node:assert/strict";
 * const target = { mainPID: 7, user: "996", group: "", supplementaryGroups: [], umask: 0o22,
 *   noNewPrivileges: false, capabilityBoundingSet: 2n ** 64n - 1n, ambientCapabilities: 0n,
 *   workingDirectory: "" };
 * const settings = enteredSettings({ name: "dbg" }, { security: {} as never, target });
 * assert.deepEqual(settings[0], ["User", "996"]);
 * assert.ok(settings.some(([k, v]) => k === "RootDirectory" && v === "/proc/7/root"));
 * ```
 */
export function enteredSettings(
  container: V1Container,
  options: EnteredSettingsOptions,
): ServiceSetting[] {
  const { security, target } = options;
  const own = container.securityContext ?? {};
  const ownIdentity = own.runAsUser !== undefined || own.runAsGroup !== undefined ||
    own.windowsOptions?.runAsUserName !== undefined;
  const ownPrivileges = own.privileged !== undefined || own.capabilities !== undefined ||
    own.allowPrivilegeEscalation !== undefined;
  const inherited = identitySettings(target).filter(([key]) =>
    IDENTITY_KEYS.has(key) ? !ownIdentity : !ownPrivileges
  );
  const out: ServiceSetting[] = [];
  if (ownIdentity) {
    if (security.user !== undefined) out.push(["User", security.user]);
    if (security.group !== undefined) out.push(["Group", security.group]);
    if (security.supplementaryGroups.length > 0) {
      out.push(["SupplementaryGroups", security.supplementaryGroups.join(" ")]);
    }
  }
  out.push(...inherited);
  if (ownPrivileges) {
    if (security.noNewPrivileges) out.push(["NoNewPrivileges", "yes"]);
    if (security.boundingSet !== undefined) {
      out.push(["CapabilityBoundingSet", security.boundingSet]);
    }
  }
  const root = rootSettings(target);
  out.push(...(container.workingDir ? root.filter(([k]) => k !== "WorkingDirectory") : root));
  return out;
}
