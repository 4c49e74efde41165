/** Small test clients for WebSocket and SSE. */

/** A WebSocket client that keeps every frame it got and can send requests and await replies. */
export class WsClient {
  readonly pushes: { channel: string; seq: number; message: unknown }[] = [];
  /** Frames that end a subscription (`{channel, status: "failure", error}`, no id). */
  readonly ended: { channel: string; status: string; error: { code: string; message: string } }[] = [];
  readonly #replies = new Map<unknown, (r: Record<string, unknown>) => void>();
  readonly closed: Promise<CloseEvent>;
  #n = 0;

  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => socket.addEventListener("close", resolve));
    socket.onmessage = (e) => {
      const frame = JSON.parse(e.data);
      if ("status" in frame && "id" in frame) this.#replies.get(frame.id)?.(frame);
      else if ("status" in frame) this.ended.push(frame);
      else this.pushes.push(frame);
    };
  }

  static async connect(url: string): Promise<WsClient> {
    const socket = new WebSocket(url.replace(/^http/, "ws"));
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = () => reject(new Error(`Cannot open ${url}`));
    });
    return new WsClient(socket);
  }

  request(method: string, params?: unknown): Promise<Record<string, unknown>> {
    const id = ++this.#n;
    return new Promise((resolve) => {
      this.#replies.set(id, resolve);
      this.socket.send(JSON.stringify({ id, method, params }));
    });
  }

  close(): Promise<CloseEvent> {
    if (this.socket.readyState < WebSocket.CLOSING) this.socket.close();
    return this.closed;
  }
}

/** An SSE stream read with fetch: events as they come, and how it ended. */
export class SseClient {
  readonly events: { id: string | null; event: string; data: string }[] = [];
  readonly comments: string[] = [];
  readonly done: Promise<void>;
  readonly #abort = new AbortController();

  private constructor(readonly response: Response) {
    this.done = this.#read().catch(() => {});
  }

  static async open(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const abort = new AbortController();
    const res = await fetch(url, { headers, signal: abort.signal });
    const c = new SseClient(res);
    c.#abort.signal.addEventListener("abort", () => abort.abort());
    return c;
  }

  async #read(): Promise<void> {
    if (!this.response.body) return;
    const reader = this.response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += value;
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        let id: string | null = null, event = "message", data = "";
        for (const line of block.split("\n")) {
          if (line.startsWith(":")) this.comments.push(line.slice(1).trim());
          else if (line.startsWith("id: ")) id = line.slice(4);
          else if (line.startsWith("event: ")) event = line.slice(7);
          else if (line.startsWith("data: ")) data += line.slice(6);
        }
        if (data) this.events.push({ id, event, data });
      }
    }
  }

  close(): Promise<void> {
    this.#abort.abort();
    return this.done;
  }
}
