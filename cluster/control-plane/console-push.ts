// Live updates for the console, pushed as server-sent events (`GET /api/v1/console/stream`).
//
// A page subscribes to what it shows: `?watch=<view>[?<query>]` once per console view on screen (at most
// MAX_WATCHES), the same views and queries as the JSON endpoints (console-api.ts), validated the same way.
// Each distinct view-and-query is a topic, read once per PUSH_MS for all of its subscribers (ten tabs on the
// same page cost one read), and sent only when it changed (`at` aside) or RESEND_MS passed (so that
// charts and "updated" times move on a quiet cluster). A topic with no subscriber is dropped: nothing is
// read for views nobody looks at.
//
// Events: `update` with `{ i, body }` (i: the watch's index in the stream's query) and `view-error` with
// `{ i, error: { code, message } }`; a comment line every KEEPALIVE_MS keeps proxies (and a follower replica
// relaying the stream) from taking a quiet stream for a dead one. A replica that stops leading ends its
// streams; EventSource reconnects by itself (after `retry` ms) and lands on the new leader.
//
// Why SSE rather than a WebSocket: the updates go one way, the admin API is a plain node:http server whose
// follower replicas already relay any answer as a stream (admin-api.ts `forward`), EventSource reconnects by
// itself and the page's `connect-src 'self'` policy covers it; a WebSocket would need an upgrade path, its
// own relay through followers and a reconnect loop in the page, for no gain in one-way traffic.
import type { ServerResponse } from 'node:http';

/** Between two reads of one topic, ms: an invocation shows on screen within about this (plus the data plane's report tick). */
export const PUSH_MS = 1000;
/** An unchanged topic is sent again after this long, ms. */
export const RESEND_MS = 5000;
/** Between two keep-alive comments on a stream, ms: well inside the admin API's 30 s forwarding bound. */
const KEEPALIVE_MS = 15_000;
/** What EventSource waits before it reconnects, ms. */
const RETRY_MS = 1000;
/** Views one stream may watch: a page shows at most three. */
export const MAX_WATCHES = 4;
/** Streams open at once on one replica: each costs its topics' reads. */
export const MAX_STREAMS = 64;

/** One watched view: its name and its query (already validated). */
export interface Watch {
  readonly view: string;
  readonly params: URLSearchParams;
}

/** Reads one view (console-api.ts answer); throws `{ code, message }`-like errors for refusals. */
export type ReadView = (watch: Watch) => Promise<unknown>;

interface Sink {
  readonly res: ServerResponse;
  readonly index: number;
}

interface Topic {
  readonly watch: Watch;
  readonly sinks: Set<Sink>;
  /** The last body sent, as JSON without `at`; undefined before the first read. */
  lastJson: string | undefined;
  /** The last event sent (whole), for a subscriber that joins between reads. */
  lastEvent: { name: string; data: Record<string, unknown> } | undefined;
  lastSentAt: number;
  timer: NodeJS.Timeout | undefined;
  reading: boolean;
}

export interface PushOptions {
  /** True once the streams should end (this replica stopped leading): checked at each read. */
  readonly ended?: () => boolean;
  readonly pushMs?: number;
  readonly resendMs?: number;
  readonly keepaliveMs?: number;
}

export class ConsolePush {
  private readonly topics = new Map<string, Topic>();
  private readonly streams = new Set<ServerResponse>();
  private readonly pushMs: number;
  private readonly resendMs: number;
  private readonly keepaliveMs: number;

  constructor(
    private readonly read: ReadView,
    private readonly options: PushOptions = {},
  ) {
    this.pushMs = options.pushMs ?? PUSH_MS;
    this.resendMs = options.resendMs ?? RESEND_MS;
    this.keepaliveMs = options.keepaliveMs ?? KEEPALIVE_MS;
  }

  /** Open streams, and topics being read: what the console costs right now. */
  get load(): { streams: number; topics: number } {
    return { streams: this.streams.size, topics: this.topics.size };
  }

  get full(): boolean {
    return this.streams.size >= MAX_STREAMS;
  }

  /** Starts an event stream on `res` for these watches (validated by the caller); it ends when the client goes. */
  open(watches: readonly Watch[], res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' });
    res.write(`retry: ${RETRY_MS}\n\n`);
    this.streams.add(res);
    const sinks = watches.map((watch, index) => {
      const sink: Sink = { res, index };
      const topic = this.topic(watch);
      topic.sinks.add(sink);
      if (topic.lastEvent !== undefined) write(res, topic.lastEvent.name, { i: index, ...topic.lastEvent.data });
      return { topic, sink };
    });
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), this.keepaliveMs);
    res.once('close', () => {
      clearInterval(keepalive);
      this.streams.delete(res);
      for (const { topic, sink } of sinks) {
        topic.sinks.delete(sink);
        if (topic.sinks.size === 0) this.drop(topic);
      }
    });
  }

  /** Ends every stream (the replica stopped leading, or the admin API closes); pages reconnect. */
  close(): void {
    for (const res of [...this.streams]) res.end();
    for (const topic of [...this.topics.values()]) this.drop(topic);
  }

  private topic(watch: Watch): Topic {
    const key = topicKey(watch);
    let topic = this.topics.get(key);
    if (topic === undefined) {
      topic = { watch, sinks: new Set(), lastJson: undefined, lastEvent: undefined, lastSentAt: 0, timer: undefined, reading: false };
      this.topics.set(key, topic);
      const t = topic;
      t.timer = setInterval(() => void this.tick(t), this.pushMs);
      void this.tick(t);
    }
    return topic;
  }

  private drop(topic: Topic): void {
    clearInterval(topic.timer);
    const key = topicKey(topic.watch);
    if (this.topics.get(key) === topic) this.topics.delete(key);
  }

  private async tick(topic: Topic): Promise<void> {
    if (this.options.ended?.() === true) return this.close();
    if (topic.reading) return; // the previous read is still out (a slow peer): skip, do not pile up
    topic.reading = true;
    let event: { name: string; data: Record<string, unknown> };
    let json: string;
    try {
      const body = await this.read(topic.watch);
      event = { name: 'update', data: { body } };
      json = JSON.stringify(body, (key, value: unknown) => (key === 'at' ? undefined : value));
    } catch (error) {
      const e = error as { code?: string; message?: string };
      event = { name: 'view-error', data: { error: { code: e.code ?? 'INTERNAL', message: e.message ?? String(error) } } };
      json = `error:${JSON.stringify(event.data)}`;
    } finally {
      topic.reading = false;
    }
    if (topic.sinks.size === 0) return;
    const now = performance.now();
    if (json === topic.lastJson && now - topic.lastSentAt < this.resendMs) return;
    topic.lastJson = json;
    topic.lastEvent = event;
    topic.lastSentAt = now;
    for (const sink of topic.sinks) write(sink.res, event.name, { i: sink.index, ...event.data });
  }
}

function write(res: ServerResponse, name: string, data: unknown): void {
  // JSON.stringify never emits a raw newline, so the data stays on one `data:` line.
  if (!res.writableEnded) res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** The same view and query, whatever the order of its parameters. */
function topicKey(watch: Watch): string {
  const params = [...watch.params].sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  return `${watch.view}?${new URLSearchParams(params)}`;
}
