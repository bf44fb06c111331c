/**
 * What the probe handlers (http.ts, grpc.ts, probe.ts) answer, in a module of its own so the
 * handlers and their dispatcher do not import each other.
 *
 * @module
 */

/** The outcome of one attempt; `message` says why it failed. */
export interface ProbeOutcome {
  ok: boolean;
  message?: string;
}
