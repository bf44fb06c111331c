/**
 * systemd unit files: codec, escaping, naming and the `[X-Kubernetes]` metadata section.
 *
 * - codec.ts: {@link parseUnit} ⇄ {@link serializeUnit} on raw values (types.ts).
 * - escape.ts: intended strings → raw values ({@link execCommandLine},
 *   {@link environmentAssignment}, {@link pathValue}, {@link bindPath} ...) and the reference
 *   decoders that read raw values the way systemd 252 does.
 * - name.ts: {@link unitName}, {@link podSliceName}. metadata.ts: {@link metadataSection},
 *   {@link readMetadata}, and the pod slice's {@link podMetadataSection}, {@link readPodMetadata}.
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
export {
  isPodSliceName,
  isValidUnitName,
  type NamespacedName,
  PODS_SLICE,
  podSliceName,
  unitName,
} from "./name.ts";
export {
  type KubernetesMetadata,
  METADATA_SECTION,
  metadataSection,
  type PodMetadata,
  podMetadataSection,
  readMetadata,
  readPodMetadata,
} from "./metadata.ts";
