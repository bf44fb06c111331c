/**
 * The data model of a systemd unit file, shared by the codec, the planner and the
 * systemd client. Values are kept *raw*: exactly the text after `=` as systemd reads it
 * (continuation lines joined), so parse ⇄ serialize is lossless. Turning intended
 * strings (argv words, environment values) into raw values is the job of the escaping
 * functions in `escape.ts`.
 *
 * @module
 */

/** One line of a section: a `Key=value` directive or a comment. */
export type UnitLine =
  | { kind: "directive"; key: string; value: string }
  | { kind: "comment"; text: string };

/** A `[Name]` section with its lines in file order (repeated keys kept). */
export interface UnitSection {
  name: string;
  lines: UnitLine[];
}

/** A whole unit file: comments before the first section, then the sections in order. */
export interface UnitFile {
  header: UnitLine[];
  sections: UnitSection[];
}
