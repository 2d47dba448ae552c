// Cross-thread delivery: envelopes for one destination are batched and posted once per event-loop
// turn over a MessagePort. Measured on this 2-core machine (`npm run bench:link`, medians of 3, 300k
// envelopes, batches of 256): one postMessage per envelope 0.49M msg/s; structured-clone batches 1.46M;
// msgpackr-packed batches (bytes transferred) 1.92M; a SharedArrayBuffer ring of msgpackr frames 1.94M
// but its reader must block in Atomics.wait, which an event-loop shard cannot do. So: msgpack batches.
import type { MessagePort } from 'node:worker_threads';
import { Packr } from 'msgpackr';
import type { Envelope } from './envelope.js';

export type CodecName = 'clone' | 'msgpack';

export interface Codec {
  encode(batch: Envelope[]): { data: unknown; transfer: ArrayBuffer[] };
  decode(data: unknown): Envelope[];
}

export function createCodec(name: CodecName): Codec {
  if (name === 'clone') {
    return { encode: (batch) => ({ data: batch, transfer: [] }), decode: (data) => data as Envelope[] };
  }
  // A Packr per codec instance: msgpackr mutates its options object, so none is shared.
  const packr = new Packr({ useRecords: false, moreTypes: false });
  return {
    encode(batch) {
      // pack() may return a view into a shared buffer: copy before transferring.
      const bytes = new Uint8Array(packr.pack(batch));
      return { data: bytes, transfer: [bytes.buffer] };
    },
    decode: (data) => packr.unpack(data as Uint8Array) as Envelope[],
  };
}

/** Largest batch posted at once, so one huge burst is split into digestible messages. */
const MAX_BATCH = 4096;

/** One outbound side of a port. Flushing is driven by the thread's Flusher. */
export class OutboundLink {
  private batch: Envelope[] = [];
  sent = 0;
  batches = 0;
  private closed = false;

  constructor(
    private readonly port: MessagePort,
    private readonly codec: Codec,
    private readonly flusher: Flusher,
  ) {}

  send(envelope: Envelope): void {
    if (this.closed) return;
    if (this.batch.length === 0) this.flusher.mark(this);
    this.batch.push(envelope);
    this.sent += 1;
    if (this.batch.length >= MAX_BATCH) this.flush();
  }

  flush(): void {
    if (this.batch.length === 0 || this.closed) return;
    const batch = this.batch;
    this.batch = [];
    const { data, transfer } = this.codec.encode(batch);
    this.port.postMessage(data, transfer);
    this.batches += 1;
  }

  close(): void {
    this.flush();
    this.closed = true;
  }
}

/** Flushes every link that got envelopes during this event-loop turn, with one setImmediate. */
export class Flusher {
  private dirty = new Set<OutboundLink>();
  private scheduled = false;

  mark(link: OutboundLink): void {
    this.dirty.add(link);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flushAll);
    }
  }

  readonly flushAll = (): void => {
    this.scheduled = false;
    const links = this.dirty;
    this.dirty = new Set();
    for (const link of links) link.flush();
  };
}

/** Feed every envelope arriving on `port` to `deliver`. */
export function listen(port: MessagePort, codec: Codec, deliver: (envelope: Envelope) => void): void {
  port.on('message', (data: unknown) => {
    for (const envelope of codec.decode(data)) deliver(envelope);
  });
}
