/**
 * systemd unit files: codec, escaping, naming and the `[X-Kubernetes]` metadata section.
 *
 * - codec.ts: {@link parseUnit} ⇄ {@link serializeUnit} on raw values (types.ts).
 * - escape.ts: intended strings → raw values ({@link execCommandLine},
 *   {@link environmentAssignment}, {@link pathValue}, {@link bindPath} ...) and the reference
 *   decoders that read raw values the way systemd 252 does.
 * - name.ts: {@link unitName}. metadata.ts: {@link metadataSection}, {@link readMetadata}.
 *
 * @module
 */
export type { UnitFile, UnitLine, UnitSection } from "./types.ts";
export { UnitValueError } from "./errors.ts";
export { comment, parseUnit, serializeUnit } from "./codec.ts";
export {
  type BindMount,
  bindPath,
  decodeBindPaths,
  decodeEnvironment,
  decodeExecCommandLine,
  decodePathList,
  decodeTemporaryFileSystems,
  environmentAssignment,
  environmentFileAssignment,
  escapeSpecifiers,
  type ExecArgument,
  execArguments,
  execCommandLine,
  type ExecCommandOptions,
  type ExecutableWord,
  executableWord,
  pathValue,
  readExecutableWord,
  type TemporaryFileSystem,
  temporaryFileSystemValue,
  workingDirectoryValue,
} from "./escape.ts";
export { isValidUnitName, unitName } from "./name.ts";
export {
  type KubernetesMetadata,
  METADATA_SECTION,
  metadataSection,
  readMetadata,
} from "./metadata.ts";
