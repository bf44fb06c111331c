/**
 * Following systemk's units through systemd's `PropertiesChanged` signals: each signal
 * carries only the properties that changed, so a full snapshot per unit is kept (read once in
 * full, then updated from signal values) and delivered to the listeners, changes arriving
 * together once. Signals that arrive while a unit is being read win over the read: when the
 * unit was garbage-collected before it, the read loads a blank unit while the signals carry
 * its real last state.
 *
 * @module
 */
import type { UnitProperties } from "../unit/properties.ts";
import { POLLED_PROPERTIES } from "./_properties.ts";

/** Called with a unit's current properties after each change. */
export type UnitChangeListener = (unitName: string, props: UnitProperties) => void;

/** One `PropertiesChanged` signal of a unit, as {@link UnitChanges.changed} takes it. */
export interface UnitSignal {
  /** The changed values the signal carries. */
  values: Partial<UnitProperties>;
  /** A tracked property was invalidated (changed without its value): the unit must be read. */
  invalidated: boolean;
}

/** What change following knows about one unit. */
interface Tracked {
  /** Last full snapshot, kept current from signal values. */
  snapshot?: UnitProperties;
  /** Signal values received since the running fetch was asked for. */
  sinceFetch?: Partial<UnitProperties>;
  fetching: boolean;
  /** Another fetch is needed after the running one (a tracked property was invalidated). */
  refetch: boolean;
  emitTimer?: ReturnType<typeof setTimeout>;
}

/** How many units a resync reads at once. */
const RESYNC_CONCURRENCY = 16;

/** What change following reads units with, and where its failures go. */
export interface UnitChangesOptions {
  /** Reads a unit in full. */
  read(name: string): Promise<UnitProperties>;
  /** A read or a listener failed. */
  onError(what: string, error: unknown): void;
}

/** The units followed and their listeners; see the module doc. */
export class UnitChanges {
  readonly #o: UnitChangesOptions;
  readonly #listeners = new Set<UnitChangeListener>();
  readonly #tracked = new Map<string, Tracked>();

  /** @param options how units are read and failures reported. */
  constructor(options: UnitChangesOptions) {
    this.#o = options;
  }

  /** Whether anyone listens: following changes costs a read per newly seen unit. */
  get listening(): boolean {
    return this.#listeners.size > 0;
  }

  /** Adds a listener; returns a function that removes it. */
  listen(listener: UnitChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * A full read of `name`, when no signal of the unit came before it: change following starts
   * from it rather than reading the unit again at its first signal.
   */
  seed(name: string, props: UnitProperties): void {
    if (!this.#tracked.has(name)) {
      this.#tracked.set(name, { snapshot: withoutPolled(props), fetching: false, refetch: false });
    }
  }

  /** Signal values for `name`; a unit seen for the first time is read in full first. */
  changed(name: string, signal: UnitSignal): void {
    const { values, invalidated } = signal;
    const t = this.#tracking(name);
    if (t.fetching) {
      t.sinceFetch = { ...t.sinceFetch, ...values };
      t.refetch ||= invalidated;
    } else if (t.snapshot && !invalidated) {
      t.snapshot = { ...t.snapshot, ...values };
      this.#scheduleEmit(name, t);
    } else {
      void this.#fetch(name, values);
    }
  }

  /**
   * After anything may have been missed: forgets the units not in `known`, reads and reports
   * every unit of `loaded`.
   */
  async resync(known: ReadonlySet<string>, loaded: readonly string[]): Promise<void> {
    for (const name of this.#tracked.keys()) if (!known.has(name)) this.forget(name);
    for (let i = 0; i < loaded.length; i += RESYNC_CONCURRENCY) {
      await Promise.all(loaded.slice(i, i + RESYNC_CONCURRENCY).map((name) => this.#fetch(name)));
    }
  }

  /** Stops following `name` (its unit was removed). */
  forget(name: string): void {
    clearTimeout(this.#tracked.get(name)?.emitTimer);
    this.#tracked.delete(name);
  }

  /** Stops following every unit. */
  clear(): void {
    for (const t of this.#tracked.values()) clearTimeout(t.emitTimer);
    this.#tracked.clear();
  }

  #tracking(name: string): Tracked {
    let t = this.#tracked.get(name);
    if (!t) this.#tracked.set(name, t = { fetching: false, refetch: false });
    return t;
  }

  /** Reads the unit in full; `values` (the signal that prompted the read) win over the read. */
  async #fetch(name: string, values: Partial<UnitProperties> = {}): Promise<void> {
    const t = this.#tracking(name);
    t.fetching = true;
    t.refetch = false;
    t.sinceFetch = values;
    try {
      const props = withoutPolled(await this.#o.read(name));
      if (this.#tracked.get(name) !== t) return; // forgotten meanwhile
      t.snapshot = { ...props, ...t.sinceFetch };
      this.#scheduleEmit(name, t);
    } catch (e) {
      this.#o.onError(`reading ${name}`, e);
    } finally {
      t.fetching = false;
      t.sinceFetch = undefined;
    }
    if (t.refetch && this.#tracked.get(name) === t) await this.#fetch(name);
  }

  #scheduleEmit(name: string, t: Tracked): void {
    if (t.emitTimer !== undefined) return;
    // Changes arriving together (several signals per state change) are delivered once.
    t.emitTimer = setTimeout(() => {
      t.emitTimer = undefined;
      if (!t.snapshot || this.#tracked.get(name) !== t) return;
      for (const listener of this.#listeners) {
        try {
          listener(name, { ...t.snapshot });
        } catch (e) {
          this.#o.onError(`unit change listener for ${name}`, e);
        }
      }
    }, 0);
  }
}

function withoutPolled(props: UnitProperties): UnitProperties {
  const copy = { ...props };
  for (const key of POLLED_PROPERTIES) delete copy[key];
  return copy;
}
