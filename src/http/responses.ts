/**
 * Plain-text answers of the kubelet API, shared by its routes.
 *
 * @module
 */

/** The media type of the kubelet's plain-text answers. */
export const TEXT = "text/plain; charset=utf-8";

/** Options of {@link text}. */
export interface TextOptions {
  /** Headers besides `content-type`. */
  headers?: Record<string, string>;
}

/** A plain-text response: `body` and a newline, as the kubelet's `http.Error` writes it. */
export function text(status: number, body: string, options: TextOptions = {}): Response {
  return new Response(body + "\n", {
    status,
    headers: { "content-type": TEXT, ...options.headers },
  });
}
