// Messages that leave the process are packed once, by the shard that sends them, and unpacked once, by the
// shard that receives them. The main thread of each process only relays the bytes (a copy into the link batch
// or the socket frame), where it used to unpack every batch from its shards and pack each message again for
// each socket, and the reverse on the receiving side. After a failover with 10 000 sandboxes that relaying was
// most of the new leader's main thread: full endpoint sets to every data plane, node listings.
import { Packr } from 'msgpackr';

// One per thread (a module is loaded once per thread): msgpackr keeps its buffer and options in the instance.
// Options as the socket frames' (frames.ts), so the bytes mean the same in either place.
const packr = new Packr({ useRecords: false });

export function packMessage(message: unknown): Uint8Array {
  // pack() answers a view into msgpackr's buffer, which the next pack reuses: copy it out.
  return new Uint8Array(packr.pack(message));
}

/** Throws on bytes that are not one msgpack value. */
export function unpackMessage(bytes: Uint8Array): unknown {
  return packr.unpack(bytes);
}
