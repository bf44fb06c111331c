/**
 * systemd unit files: codec, escaping, naming and the `[X-Kubernetes]` metadata section.
 *
 * CONTRACT STUB: signatures fixed for parallel work; the unit helper replaces the bodies
 * (and may split them into codec.ts / escape.ts / name.ts / metadata.ts re-exported here).
 *
 * @module
 */
import type { UnitFile, UnitSection } from "./types.ts";
export type { UnitFile, UnitLine, UnitSection } from "./types.ts";

/** A string that systemd cannot represent in the requested position. */
export class UnitValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnitValueError";
  }
}

/** Parses unit file text. */
export function parseUnit(_text: string): UnitFile {
  throw new Error("not implemented");
}

/** Serializes a unit file; throws UnitValueError for raw values that cannot be written. */
export function serializeUnit(_unit: UnitFile): string {
  throw new Error("not implemented");
}

/** Raw `ExecStart=` value that makes systemd run exactly `argv` (no `$`/`%` expansion). */
export function execCommandLine(_argv: readonly string[]): string {
  throw new Error("not implemented");
}

/** Raw `Environment=` value that sets `name` to exactly `value`. */
export function environmentAssignment(_name: string, _value: string): string {
  throw new Error("not implemented");
}

/** Escapes `%` specifiers in a value systemd expands specifiers in. */
export function escapeSpecifiers(_value: string): string {
  throw new Error("not implemented");
}

/** Raw value for a single absolute path setting (`WorkingDirectory=`, `ReadOnlyPaths=` ...). */
export function pathValue(_path: string): string {
  throw new Error("not implemented");
}

/** Raw value of one `BindPaths=`/`BindReadOnlyPaths=` entry mounting `source` at `destination`. */
export function bindPath(_source: string, _destination: string): string {
  throw new Error("not implemented");
}

/** `systemk.<namespace>.<pod>.<container>.service`, shortened with a hash when too long. */
export function unitName(_namespace: string, _pod: string, _container: string): string {
  throw new Error("not implemented");
}

/** Identity and bookkeeping stored in a unit's `[X-Kubernetes]` section. */
export interface KubernetesMetadata {
  namespace: string;
  podName: string;
  podUID: string;
  containerName: string;
  init: boolean;
  image: string;
  nodeName: string;
  /** Hash of the container spec (and what it was resolved with), to detect changes. */
  containerHash: string;
  /** Position among init containers or app containers, for ordering. */
  index: number;
}

/** The `[X-Kubernetes]` section holding `meta`. */
export function metadataSection(_meta: KubernetesMetadata): UnitSection {
  throw new Error("not implemented");
}

/** Reads the `[X-Kubernetes]` section back; undefined when absent or malformed. */
export function readMetadata(_unit: UnitFile): KubernetesMetadata | undefined {
  throw new Error("not implemented");
}
