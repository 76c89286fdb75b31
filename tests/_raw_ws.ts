/**
 * A minimal WebSocket client over a raw TCP socket, for tests (and the
 * bench's slow_reader figure) that need what a browser-style WebSocket cannot
 * do: read slowly (to exert back-pressure), or stop reading altogether.
 *
 * @module
 */

/** A WebSocket connection driven by hand. */
export class RawWebSocket {
  readonly conn: Deno.TcpConn;
  #buf: Uint8Array<ArrayBuffer> = new Uint8Array(0);

  private constructor(conn: Deno.TcpConn, rest: Uint8Array<ArrayBuffer>) {
    this.conn = conn;
    this.#buf = rest;
  }

  /** Connects and completes the handshake. */
  static async connect(url: string): Promise<RawWebSocket> {
    const u = new URL(url);
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port) });
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    const request = `GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\n` +
      `Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\n\r\n`;
    await conn.write(new TextEncoder().encode(request));
    let head: Uint8Array<ArrayBuffer> = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(chunk);
      if (n === null) throw new Error("connection closed during handshake");
      head = concat(head, chunk.subarray(0, n));
      const text = new TextDecoder().decode(head);
      const end = text.indexOf("\r\n\r\n");
      if (end !== -1) {
        if (!text.startsWith("HTTP/1.1 101")) throw new Error(`handshake refused: ${text}`);
        const headerBytes = new TextEncoder().encode(text.slice(0, end + 4)).length;
        return new RawWebSocket(conn, head.slice(headerBytes));
      }
    }
  }

  /** Sends a masked text frame. */
  async sendText(text: string): Promise<void> {
    const payload = new TextEncoder().encode(text);
    const mask = crypto.getRandomValues(new Uint8Array(4));
    const len = payload.length;
    const header = len < 126
      ? [0x81, 0x80 | len]
      : len < 65536
      ? [0x81, 0x80 | 126, len >> 8, len & 0xff]
      : [
        0x81,
        0x80 | 127,
        0,
        0,
        0,
        0,
        (len >>> 24) & 0xff,
        (len >> 16) & 0xff,
        (len >> 8) & 0xff,
        len & 0xff,
      ];
    const frame = new Uint8Array(header.length + 4 + len);
    frame.set(header);
    frame.set(mask, header.length);
    for (let i = 0; i < len; i++) frame[header.length + 4 + i] = payload[i]! ^ mask[i % 4]!;
    // A write may take only part of a large frame.
    for (let off = 0; off < frame.length;) off += await this.conn.write(frame.subarray(off));
  }

  /** Bytes already read from the socket but not yet consumed as frames. */
  get buffered(): number {
    return this.#buf.length;
  }

  /** Reads the next complete frame's text (server frames are unmasked). */
  async readText(): Promise<string> {
    for (;;) {
      const b = this.#buf;
      if (b.length >= 2) {
        let len = b[1]! & 0x7f;
        let off = 2;
        if (len === 126 && b.length >= 4) {
          len = (b[2]! << 8) | b[3]!;
          off = 4;
        } else if (len === 127 && b.length >= 10) {
          len = Number(new DataView(b.buffer, b.byteOffset + 2, 8).getBigUint64(0));
          off = 10;
        }
        if (len < 126 || off > 2) {
          if (b.length >= off + len) {
            const payload = b.subarray(off, off + len);
            this.#buf = b.slice(off + len);
            const opcode = b[0]! & 0x0f;
            if (opcode === 0x8) throw new Error("server closed the connection");
            if (opcode === 0x1) return new TextDecoder().decode(payload);
            continue; // ping/pong/binary: skip
          }
        }
      }
      const chunk = new Uint8Array(65536);
      const n = await this.conn.read(chunk);
      if (n === null) throw new Error("connection closed");
      this.#buf = concat(this.#buf, chunk.subarray(0, n));
    }
  }

  /** Reads and discards up to `bytes` raw bytes; returns how many were read. */
  async drain(bytes: number): Promise<number> {
    const chunk = new Uint8Array(Math.min(bytes, 65536));
    let total = 0;
    while (total < bytes) {
      const n = await this.conn.read(chunk.subarray(0, Math.min(chunk.length, bytes - total)));
      if (n === null) break;
      total += n;
    }
    return total;
  }

  /** Drops the TCP connection without a closing handshake. */
  close(): void {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
