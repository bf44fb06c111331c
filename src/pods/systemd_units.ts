/**
 * The runtime's UnitManager over the D-Bus client.
 *
 * @module
 */
import { containerSettings, execInContainer } from "../exec/container.ts";
import { isNoSuchUnit, SystemdClient } from "../systemd/mod.ts";
import type { ExistingUnit, UnitManager } from "./ports.ts";

/** A UnitManager that can also be closed and mask package units. */
export interface SystemdUnits extends UnitManager {
  client: SystemdClient;
  close(): Promise<void>;
}

/** Connects to systemd (the system bus, or `busAddress`) and adapts the client. */
export async function connectUnitManager(
  opts: { unitDir?: string; busAddress?: string } = {},
): Promise<SystemdUnits> {
  const client = await SystemdClient.connect(opts);
  return {
    client,
    install: (name, text) => client.installUnit(name, text),
    remove: (name) => client.removeUnit(name),
    start: (name) => client.start(name),
    // A unit systemd no longer knows (gone while it re-executed, say) is as stopped as can be.
    stop: (name) =>
      client.stop(name).catch((e) => {
        if (isNoSuchUnit(e)) return "done";
        throw e;
      }),
    kill: (name, signal) => client.kill(name, signal),
    async resize(name, { text, properties }) {
      await client.setUnitProperties(name, properties);
      await client.writeUnitFile(name, text);
    },
    resetFailed: (name) => client.resetFailed(name),
    properties: (name) => client.getProperties(name),
    async activeStates() {
      return new Map((await client.listLoadedUnits()).map((u) => [u.name, u.activeState]));
    },
    async list(): Promise<ExistingUnit[]> {
      return (await client.listUnits()).flatMap((u) =>
        u.text === undefined ? [] : [{ name: u.name, text: u.text }]
      );
    },
    onChange(listener) {
      client.onUnitChange(listener);
    },
    exec: (name, options) => execInContainer({ systemd: client }, name, options),
    async target(name) {
      try {
        const settings = containerSettings(name, await client.getServiceSettings(name));
        return settings.mainPID > 0 ? settings : undefined;
      } catch (e) {
        if (isNoSuchUnit(e)) return undefined;
        throw e;
      }
    },
    close: () => client.close(),
  };
}
