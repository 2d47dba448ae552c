// The console's view of every actor in the cluster: the leader's own shards and, over the cluster links
// it already holds, every connected worker's and data plane's. Nothing is pushed or kept: each request asks
// the shards it needs (`$shard` control asks; see runtime/envelope.ts), bounded in time, and a process that
// does not answer is named in `unreachable` instead of failing the whole answer.
import type { ActorInspection, ActorQuery, ActorRuntime, ActorStats, ActorTop, ShardStats } from '../../runtime/index.js';
import { ActorRuntimeError, mergePage } from '../../runtime/index.js';
import { isErrorCode } from '../../actors/errors.js';
import { SHARD_KIND, type ShardControl } from '../../runtime/envelope.js';
import type { FrameConnection } from '../../runtime/frames.js';
import type { ClusterTransport } from '../../runtime/transport.js';

/** The control plane's own process, as the console names it. */
export const CONTROL_PLANE_PROCESS = 'control-plane';
/** Bound on one process's answer, ms: a console request never waits longer for a slow or gone peer. */
export const INSPECT_ASK_MS = 2000;

/** A process reached over a cluster link: `worker:<id>` or `dataplane:<id>`. */
export interface InspectionPeer {
  readonly process: string;
  readonly connection: FrameConnection;
}

export interface ProcessStats {
  readonly process: string;
  readonly shards: ShardStats[];
}

export interface ClusterActors extends ActorTop {
  /** Processes asked that did not answer within INSPECT_ASK_MS (their actors are missing from the page). */
  readonly unreachable: string[];
}

export interface ActorFilter {
  readonly process?: string | undefined;
  readonly shard?: number | undefined;
}

export class ClusterInspector {
  /** Shard count of each peer, learnt from its shard 0 (a process's shard count is fixed while it runs). */
  private readonly shardCounts = new Map<FrameConnection, number>();

  constructor(
    private readonly runtime: ActorRuntime,
    private readonly transport: ClusterTransport,
    private readonly peers: () => InspectionPeer[],
  ) {}

  /** Every process's shard counters (the control plane first), and who did not answer. */
  async processes(): Promise<{ processes: ProcessStats[]; unreachable: string[] }> {
    const own: ProcessStats = { process: CONTROL_PLANE_PROCESS, shards: await this.runtime.stats() };
    const answers = await Promise.all(
      this.peers().map(async (peer) => {
        try {
          return { process: peer.process, shards: await this.peerShards<ShardStats>(peer, { op: 'stats' }) };
        } catch {
          return peer.process;
        }
      }),
    );
    return { processes: [own, ...answers.filter((a): a is ProcessStats => typeof a !== 'string')], unreachable: answers.filter((a): a is string => typeof a === 'string') };
  }

  /** One page of the cluster's actors in the query's order, over every process (or one), every shard (or one). */
  async topActors(query: ActorQuery, filter: ActorFilter = {}): Promise<ClusterActors> {
    const op = { op: 'top', kind: query.kind, sort: query.sort, offset: 0, limit: query.offset + query.limit } as const;
    const head = { ...query, offset: 0, limit: query.offset + query.limit };
    const answers: ActorTop[] = [];
    const unreachable: string[] = [];
    const wanted = (process: string) => filter.process === undefined || filter.process === process;
    const jobs: Promise<void>[] = [];
    if (wanted(CONTROL_PLANE_PROCESS) && this.hasShard(filter, this.runtime.shards, CONTROL_PLANE_PROCESS)) {
      jobs.push(this.runtime.topActors(head, filter.shard).then((top) => void answers.push(labelled(top, CONTROL_PLANE_PROCESS))));
    }
    for (const peer of this.peers().filter((p) => wanted(p.process))) {
      jobs.push(
        (async () => {
          let tops: ActorTop[];
          try {
            if (filter.shard === undefined) tops = await this.peerShards<ActorTop>(peer, op);
            else if (this.hasShard(filter, await this.shardCount(peer), peer.process)) tops = [await this.askShard<ActorTop>(peer, filter.shard, op)];
            else tops = [];
          } catch (error) {
            if (error instanceof ActorRuntimeError && error.code === 'BAD_REQUEST') throw error;
            unreachable.push(peer.process);
            return;
          }
          answers.push(labelled(mergePage(tops, head), peer.process));
        })(),
      );
    }
    await Promise.all(jobs);
    if (filter.process !== undefined && filter.process !== CONTROL_PLANE_PROCESS && !this.peers().some((p) => p.process === filter.process)) throw new ActorRuntimeError('NO_SUCH_ACTOR', `no connected process named ${filter.process}`);
    return { ...mergePage(answers, query), unreachable: unreachable.sort() };
  }

  /** One actor's counters, state and state line, by the process, shard and name a listing gives (`watchMs`: see ActorRuntime.inspectName). */
  async inspect(process: string, shard: number, name: string, watchMs?: number): Promise<ActorInspection> {
    if (process === CONTROL_PLANE_PROCESS) return this.runtime.inspectName(shard, name, watchMs);
    const peer = this.peers().find((p) => p.process === process);
    if (peer === undefined) throw new ActorRuntimeError('NO_SUCH_ACTOR', `no connected process named ${process}`);
    this.checkedShard(shard, await this.shardCount(peer), process);
    return this.askShard<ActorInspection>(peer, shard, { op: 'inspect-name', name, watchMs });
  }

  /**
   * Whether a process has the shard a filter names (or the filter names none). Processes differ in shard count:
   * without a process filter, one that lacks the shard is skipped; asked by name, it is a mistake in the query.
   */
  private hasShard(filter: ActorFilter, shards: number, process: string): boolean {
    if (filter.shard === undefined || filter.shard < shards) return true;
    if (filter.process === undefined) return false;
    throw new ActorRuntimeError('BAD_REQUEST', `${process} has shards 0..${shards - 1}, not ${filter.shard}`);
  }

  private checkedShard(shard: number, shards: number, process: string): void {
    if (!Number.isInteger(shard) || shard < 0 || shard >= shards) throw new ActorRuntimeError('BAD_REQUEST', `${process} has shards 0..${shards - 1}, not ${shard}`);
  }

  private async shardCount(peer: InspectionPeer): Promise<number> {
    const known = this.shardCounts.get(peer.connection);
    if (known !== undefined) return known;
    const first = await this.askShard<ShardStats>(peer, 0, { op: 'stats' });
    this.shardCounts.set(peer.connection, first.shards);
    peer.connection.onClose(() => this.shardCounts.delete(peer.connection));
    return first.shards;
  }

  /** The same control ask to every shard of a peer. */
  private async peerShards<T>(peer: InspectionPeer, op: ShardControl): Promise<T[]> {
    const shards = await this.shardCount(peer);
    return Promise.all(Array.from({ length: shards }, (_, shard) => this.askShard<T>(peer, shard, op)));
  }

  private async askShard<T>(peer: InspectionPeer, shard: number, op: ShardControl): Promise<T> {
    try {
      return (await this.transport.askPeer(peer.connection, { kind: SHARD_KIND, id: String(shard) }, op, INSPECT_ASK_MS)) as T;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      throw new ActorRuntimeError(isErrorCode(code) ? code : 'PEER_UNAVAILABLE', (error as Error).message, { cause: error });
    }
  }
}

function labelled(top: ActorTop, process: string): ActorTop {
  return { total: top.total, items: top.items.map((a): ActorStats => ({ ...a, process })) };
}
