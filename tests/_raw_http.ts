/**
 * One raw HTTP/1.1 request over TCP, for what `fetch` cannot send: a `Host`
 * header of the test's choosing (fetch always sends the URL's), none at
 * all, or an absolute request target.
 *
 * @module
 */

/** What {@linkcode rawRequest} sends. */
export interface RawRequest {
  method?: string;
  /** The request target: a path, or an absolute URL. */
  target: string;
  /** The Host header; null sends none. */
  host: string | null;
  headers?: Record<string, string>;
  body?: string;
}

/** What came back. */
export interface RawResponse {
  status: number;
  headers: Headers;
  body: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The headers of a WebSocket upgrade request. */
export const UPGRADE_HEADERS: Readonly<Record<string, string>> = {
  Upgrade: "websocket",
  Connection: "Upgrade",
  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Version": "13",
};

/**
 * Sends `req` to 127.0.0.1:`port` and reads the answer: its head for a 101
 * (the socket is then closed), else up to `Content-Length` or the end of the
 * stream (the request asks for `Connection: close` unless it upgrades).
 * Throws when nothing complete arrives within `ms`.
 */
export async function rawRequest(
  port: number,
  req: RawRequest,
  ms = 10_000,
): Promise<RawResponse> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), ms);
  try {
    const headers: Record<string, string> = { Connection: "close", ...req.headers };
    const body = req.body ?? "";
    if (body !== "") headers["Content-Length"] = String(encoder.encode(body).length);
    const lines = [`${req.method ?? "GET"} ${req.target} HTTP/1.1`];
    if (req.host !== null) lines.push(`Host: ${req.host}`);
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    await conn.write(encoder.encode(lines.join("\r\n") + "\r\n\r\n" + body));
    let bytes = new Uint8Array(0);
    const chunk = new Uint8Array(16 * 1024);
    let head: { status: number; headers: Headers; start: number } | null = null;
    for (;;) {
      let n: number | null;
      try {
        n = await conn.read(chunk);
      } catch {
        n = null; // closed by the timer
      }
      if (n !== null) {
        const grown = new Uint8Array(bytes.length + n);
        grown.set(bytes);
        grown.set(chunk.subarray(0, n), bytes.length);
        bytes = grown;
      }
      const text = decoder.decode(bytes);
      if (head === null) {
        const end = text.indexOf("\r\n\r\n");
        if (end !== -1) {
          const [statusLine, ...fields] = text.slice(0, end).split("\r\n");
          const status = Number(statusLine!.split(" ")[1]);
          const parsed = new Headers();
          for (const field of fields) {
            const colon = field.indexOf(":");
            parsed.append(field.slice(0, colon).trim(), field.slice(colon + 1).trim());
          }
          head = {
            status,
            headers: parsed,
            start: encoder.encode(text.slice(0, end + 4)).length,
          };
          if (status === 101) return { status, headers: parsed, body: "" };
        }
      }
      if (head !== null) {
        const length = head.headers.get("content-length");
        const got = bytes.length - head.start;
        if ((length !== null && got >= Number(length)) || n === null) {
          return {
            status: head.status,
            headers: head.headers,
            body: decoder.decode(bytes.subarray(head.start)),
          };
        }
      }
      if (n === null) throw new Error(`no complete answer: ${JSON.stringify(text.slice(0, 300))}`);
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}
