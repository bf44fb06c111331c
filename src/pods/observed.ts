/**
 * The observed state of systemk's units: the last properties systemd reported for each unit
 * (from its change signals, or read when nothing was heard yet) and which run the kernel's OOM
 * killer hit. One cache, fed by systemd and read by the pod workers, the status mapping and the
 * kubelet API; nothing above `src/systemd` keeps unit properties of its own.
 *
 * @module
 */
import type { UnitProperties } from "../unit/properties.ts";
import type { UnitManager } from "./ports.ts";

/** What is known of one unit: its properties, and whether its current run was OOM-killed. */
export interface ObservedUnit {
  props: UnitProperties;
  oomKilled: boolean;
}

/** Units' last known properties; see the module doc. */
export class ObservedUnits {
  readonly #units: Pick<UnitManager, "properties">;
  readonly #props = new Map<string, UnitProperties>();
  /** Unit name → InvocationID of its run the OOM killer hit. */
  readonly #oomKilled = new Map<string, string>();

  /** @param units where a unit not heard of yet is read. */
  constructor(units: Pick<UnitManager, "properties">) {
    this.#units = units;
  }

  /** The unit's last known properties, if any. */
  get(name: string): UnitProperties | undefined {
    return this.#props.get(name);
  }

  /** The unit's last known state, with whether its current run was OOM-killed. */
  observed(name: string): ObservedUnit | undefined {
    const props = this.#props.get(name);
    return props && { props, oomKilled: this.#oomKilled.get(name) === props.InvocationID };
  }

  /** Stores what a change signal says. */
  set(name: string, props: UnitProperties): void {
    this.#props.set(name, props);
  }

  /** Reads the unit from systemd now and stores the answer (after a start, stop or reset). */
  async refresh(name: string): Promise<UnitProperties> {
    const props = await this.#units.properties(name);
    this.#props.set(name, props);
    return props;
  }

  /** The unit's last known properties, read from systemd when none are known yet. */
  async current(name: string): Promise<UnitProperties> {
    return this.#props.get(name) ?? await this.refresh(name);
  }

  /**
   * Notes an OOM kill of the unit's current run. The kernel reports it while the process dies,
   * before systemd sees the exit, so the run systemd shows now is the one killed.
   *
   * @return false when the unit has no run to blame.
   */
  async oomKill(name: string): Promise<boolean> {
    const props = await this.#units.properties(name);
    if (props.InvocationID === "") return false;
    this.#oomKilled.set(name, props.InvocationID);
    return true;
  }

  /** Forgets everything about a removed unit. */
  forget(name: string): void {
    this.#props.delete(name);
    this.#oomKilled.delete(name);
  }
}
