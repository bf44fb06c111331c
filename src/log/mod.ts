/**
 * systemk's one logger (LogTape), configured from `--log-level` and `--log-format`. Every
 * record goes to standard error, which journald collects under systemk's unit: as text
 * (`systemk: message`, other levels than info named: `systemk: warning: message`) or, with
 * `--log-format json`, as one JSON object per line (`ts`, `level`, `logger`, `msg`, and the
 * record's properties such as `pod`) for people who ship journald to a log system.
 *
 * Until {@link configureLogging} runs (tests, `systemk plan`), info and above are written as
 * text.
 *
 * @example Usage
 * ```ts ignore
 * import { configureLogging, log, podLogger } from "./mod.ts";
 * configureLogging({ level: "debug", format: "json" });
 * log.info("node n1 registered");
 * podLogger("default/web").debug("units unchanged: nothing to start");
 * ```
 *
 * @module
 */
import { configureSync, getLogger, type Logger, type LogRecord } from "@logtape/logtape";

/** The levels `--log-level` accepts, lowest first. */
export const LOG_LEVELS = ["debug", "info", "warning", "error"] as const;
/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];
/** The formats `--log-format` accepts. */
export const LOG_FORMATS = ["text", "json"] as const;
/** One of {@link LOG_FORMATS}. */
export type LogFormat = typeof LOG_FORMATS[number];

/** What to log and how. */
export interface LoggingOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where formatted lines go (default: standard error). */
  write?: (line: string) => void;
}

/**
 * A logger taking finished strings: a message is never read as a template, so braces in it
 * (JSON from an API error, say) come out as they are.
 */
export class Log {
  readonly #logger: Logger;

  /** @param logger the LogTape logger records go to. */
  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Fine detail: each pod's reconcile decisions. */
  debug(message: string): void {
    this.#logger.debug`${message}`;
  }

  /** What an operator wants to see happen. */
  info(message: string): void {
    this.#logger.info`${message}`;
  }

  /** Something went wrong and systemk copes (retries, keeps the old state). */
  warn(message: string): void {
    this.#logger.warn`${message}`;
  }

  /** Something went wrong that someone must look at. */
  error(message: string): void {
    this.#logger.error`${message}`;
  }
}

const ROOT = "systemk";

/** systemk's logger. */
export const log: Log = new Log(getLogger([ROOT]));

/** The logger of one pod (`namespace/name`): its records carry the pod as a property. */
export function podLogger(pod: string): Log {
  return new Log(getLogger([ROOT, "pod"]).with({ pod }));
}

/** The record's message as one string. */
function messageOf(record: LogRecord): string {
  return record.message.map((part) => typeof part === "string" ? part : String(part)).join("");
}

/** A text line: `systemk: message`, with the level named when it is not info. */
export function textLine(record: LogRecord): string {
  const level = record.level === "info" ? "" : `${record.level}: `;
  return `${ROOT}: ${level}${messageOf(record)}`;
}

/** A JSON line: `ts`, `level`, `logger`, `msg`, then the record's properties. */
export function jsonLine(record: LogRecord): string {
  return JSON.stringify({
    ts: new Date(record.timestamp).toISOString(),
    level: record.level,
    logger: record.category.join("."),
    msg: messageOf(record),
    ...record.properties,
  });
}

/** Configures the logger; may be called again (tests), replacing the earlier configuration. */
export function configureLogging(options: LoggingOptions): void {
  const write = options.write ?? ((line: string) => console.error(line));
  const format = options.format === "json" ? jsonLine : textLine;
  configureSync({
    reset: true,
    sinks: { out: (record) => write(format(record)) },
    loggers: [
      { category: [ROOT], lowestLevel: options.level, sinks: ["out"] },
      // LogTape's own warnings (a sink that failed) reach the same place.
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["out"] },
    ],
  });
}

configureLogging({ level: "info", format: "text" });
