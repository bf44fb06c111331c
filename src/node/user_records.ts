/**
 * userdb records for pod ids (src/plan/ids.ts): systemd 252 runs a unit only as a user and
 * groups NSS knows, while a container may run as any id. So for each pod id in use, systemk
 * drops a JSON user and group record into `/run/userdb/` (`systemk-<id>.user` and
 * `systemk-<id>.group`, with the `<id>.user`/`<id>.group` symlinks nss-systemd looks ids up
 * by), which nss-systemd resolves for systemd and every process on the node (Debian's
 * nsswitch.conf names `systemd`). Runtime only, as the units: gone after a reboot.
 *
 * Records are counted by pod: {@link UserRecords.use} before a pod's units start,
 * {@link UserRecords.release} once units no longer run with them — a record goes when no pod
 * uses its id. After a restart of systemk, {@link UserRecords.adopt} takes the ids from the
 * units found ({@link podIdsOfUnit}) and removes systemk's records none of them uses.
 *
 * @module
 */
import { parseUnit } from "../unit/mod.ts";
import type { PodIds } from "../plan/types.ts";

/** Where systemd reads runtime userdb records. */
export const USERDB_DIR = "/run/userdb";

const OURS = /^systemk-(\d+)\.(user|group)$/;

type Kind = "user" | "group";

/** The record of pod id `id` as nss-systemd reads it (JSON User/Group Record). */
function record(kind: Kind, id: number): string {
  const name = `systemk-${id}`;
  const json = kind === "user"
    ? {
      userName: name,
      uid: id,
      gid: id,
      realName: `systemk pod user ${id}`,
      homeDirectory: "/",
      shell: "/usr/sbin/nologin",
      locked: true,
      service: "systemk",
    }
    : { groupName: name, gid: id, service: "systemk" };
  return JSON.stringify(json) + "\n";
}

/**
 * The pod ids a unit of systemk's runs with, from its text: numeric `User=` (a user and its
 * group of the same number), `Group=` and `SupplementaryGroups=`. Host ids among them are
 * harmless: only ids with systemk's records count.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * const unit = "[Service]\nUser=5000\nGroup=6000\nSupplementaryGroups=7000 4\n";
 * assert.deepEqual(podIdsOfUnit(unit), { users: [5000], groups: [5000, 6000, 7000, 4] });
 * ```
 */
export function podIdsOfUnit(text: string): PodIds {
  const ids: PodIds = { users: [], groups: [] };
  const add = (list: number[], word: string) => {
    if (/^\d+$/.test(word) && !list.includes(Number(word))) list.push(Number(word));
  };
  for (const section of parseUnit(text).sections) {
    if (section.name !== "Service") continue;
    for (const line of section.lines) {
      if (line.kind !== "directive") continue;
      if (line.key === "User") {
        add(ids.users, line.value.trim());
        add(ids.groups, line.value.trim());
      } else if (line.key === "Group" || line.key === "SupplementaryGroups") {
        for (const word of line.value.trim().split(/\s+/)) add(ids.groups, word);
      }
    }
  }
  return ids;
}

/** Options of {@link UserRecords}. */
export interface UserRecordsOptions {
  /** Where records go; default {@link USERDB_DIR}. */
  dir?: string;
}

/**
 * The pod ids' userdb records of this node, counted by pod UID. Operations run one at a time.
 *
 * @example Usage
 * ```ts ignore
 * const records = new UserRecords();
 * await records.use(podUID, { users: [5000], groups: [5000, 6000] }); // before its units start
 * await records.release(podUID); // once its units are gone
 * ```
 */
export class UserRecords {
  readonly #dir: string;
  /** Per pod UID: the ids its units run with. */
  readonly #pods = new Map<string, PodIds>();
  /** `user:<id>` / `group:<id>` of systemk's records on disk (to remove once unused). */
  readonly #present = new Set<string>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(opts: UserRecordsOptions = {}) {
    this.#dir = opts.dir ?? USERDB_DIR;
  }

  /**
   * Adds ids pod `pod` runs with and writes their records where missing.
   *
   * @throws Error when a record of another owner holds one of the ids.
   */
  use(pod: string, ids: PodIds): Promise<void> {
    return this.#serialized(async () => {
      const had = this.#pods.get(pod) ?? { users: [], groups: [] };
      const merged = {
        users: [...new Set([...had.users, ...ids.users])],
        groups: [...new Set([...had.groups, ...ids.groups])],
      };
      this.#pods.set(pod, merged);
      for (const uid of ids.users) await this.#write("user", uid);
      for (const gid of ids.groups) await this.#write("group", gid);
    });
  }

  /**
   * Forgets the ids of pod `pod` except `keep`, and removes the records no pod uses any more.
   */
  release(pod: string, keep: PodIds = { users: [], groups: [] }): Promise<void> {
    return this.#serialized(async () => {
      const had = this.#pods.get(pod);
      if (had) {
        const kept = {
          users: had.users.filter((id) => keep.users.includes(id)),
          groups: had.groups.filter((id) => keep.groups.includes(id)),
        };
        if (kept.users.length + kept.groups.length === 0) this.#pods.delete(pod);
        else this.#pods.set(pod, kept);
      }
      await this.#removeUnused();
    });
  }

  /**
   * After a restart: the ids each pod's units run with (from {@link podIdsOfUnit}); systemk's
   * records no pod uses are removed.
   */
  adopt(inUse: ReadonlyMap<string, PodIds>): Promise<void> {
    return this.#serialized(async () => {
      for (const [pod, ids] of inUse) this.#pods.set(pod, ids);
      for await (const entry of readDirOrEmpty(this.#dir)) {
        const m = OURS.exec(entry.name);
        if (m) this.#present.add(`${m[2]}:${m[1]}`);
      }
      await this.#removeUnused();
    });
  }

  #serialized<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(fn, fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Writes the record of `id` unless it is there (a restart of systemk keeps them). */
  async #write(kind: Kind, id: number): Promise<void> {
    await Deno.mkdir(this.#dir, { recursive: true, mode: 0o755 });
    const file = `systemk-${id}.${kind}`;
    const link = `${this.#dir}/${id}.${kind}`;
    const target = await Deno.readLink(link).catch((e) => {
      if (e instanceof Deno.errors.NotFound) return undefined;
      // EINVAL: not a symlink, so a record of someone else's, which systemk leaves alone.
      if (e.code === "EINVAL") return "";
      throw e;
    });
    if (target !== undefined && target !== file) {
      throw new Error(
        `${link} is a ${kind} record systemk did not make: id ${id} is taken on this node`,
      );
    }
    this.#present.add(`${kind}:${id}`);
    const path = `${this.#dir}/${file}`;
    if (target === file && (await Deno.lstat(path).catch(() => undefined))?.isFile) return;
    // Written in full, then renamed into place: nss-systemd never reads half a record.
    const temp = `${this.#dir}/.${file}.${crypto.randomUUID()}`;
    await Deno.writeTextFile(temp, record(kind, id), { createNew: true, mode: 0o644 });
    await Deno.chmod(temp, 0o644);
    await Deno.rename(temp, path);
    if (target === undefined) {
      const tempLink = `${this.#dir}/.${id}.${kind}.${crypto.randomUUID()}`;
      await Deno.symlink(file, tempLink);
      await Deno.rename(tempLink, link);
    }
  }

  async #removeUnused(): Promise<void> {
    const used = new Set<string>();
    for (const ids of this.#pods.values()) {
      for (const id of ids.users) used.add(`user:${id}`);
      for (const id of ids.groups) used.add(`group:${id}`);
    }
    for (const key of [...this.#present]) {
      if (used.has(key)) continue;
      const [kind, id] = key.split(":");
      // The symlink first: a lookup by id never finds a dangling link to a removed record.
      const link = `${this.#dir}/${id}.${kind}`;
      if ((await Deno.readLink(link).catch(() => undefined)) === `systemk-${id}.${kind}`) {
        await Deno.remove(link).catch(ignoreNotFound);
      }
      await Deno.remove(`${this.#dir}/systemk-${id}.${kind}`).catch(ignoreNotFound);
      this.#present.delete(key);
    }
  }
}

async function* readDirOrEmpty(dir: string): AsyncIterable<Deno.DirEntry> {
  try {
    yield* Deno.readDir(dir);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
}

function ignoreNotFound(e: unknown): void {
  if (!(e instanceof Deno.errors.NotFound)) throw e;
}
