// The in-process cluster harness: every real actor kind of the control plane, the workers and one
// data plane in one deterministic Simulation (memory transport, manual clock, seeded randomness),
// with fake ports in place of sandbox runtimes. Scenario tests drive it as scripts and compare the
// transcript with a stored one.
import type { Address } from '../../actors/actor.js';
import { autoscalerKind } from '../../actors/autoscaler-actor.js';
import { dataPlaneSandboxKind } from '../../actors/dp-sandbox.js';
import { functionKind } from '../../actors/function.js';
import { parseFunctionSpec, type FunctionSpec } from '../../actors/function-spec.js';
import {
  functionAddress,
  nodeAddress,
  routerAddress,
  schedulerAddress,
  type FunctionStatus,
  type InvocationOutcome,
  type NodeCapacity,
  type NodeView,
} from '../../actors/messages.js';
import { nodeKind, type SandboxCreateInput } from '../../actors/node.js';
import { routerKind } from '../../actors/router.js';
import { schedulerKind } from '../../actors/scheduler.js';
import { delayed, delayedFailure, Simulation } from '../../runtime/sim.js';

export const DATAPLANE_ID = 'dp1';
export const TERM = 1;

/** Per-delivery lines left out of transcripts: periodic chatter and the per-request hot path. */
const QUIET = ['as.tick', 'as.metric', 'fn.load', 'rt.tick', 'sch.checkHeartbeats', 'sch.heartbeat', 'node.heartbeat', 'rt.invoke', 'sb.invoke', 'sb.done', 'sb.release', 'rt.released', 'rt.expire'];

export interface HarnessOptions {
  readonly nodes: number;
  readonly capacity?: NodeCapacity;
  /** Simulated sandbox creation time, ms. */
  readonly createMs?: number;
  readonly seed?: number;
}

export interface InvokeOptions {
  /** How long the sandbox holds the request, ms of simulated time. */
  readonly holdMs?: number;
}

/** A running cluster in one Simulation, plus helpers that read like a scenario script. */
export class Harness {
  readonly sim: Simulation;
  readonly nodeIds: string[];
  /** Sandbox ids whose next invocation fails (a crashed sandbox seen by the data plane). */
  private readonly broken = new Set<string>();
  private holdMs = 0;
  invocations = 0;

  constructor(options: HarnessOptions) {
    const createMs = options.createMs ?? 0;
    this.nodeIds = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    this.sim = new Simulation({
      kinds: [functionKind, autoscalerKind, schedulerKind, nodeKind, routerKind({ dataplaneId: DATAPLANE_ID, policy: 'least-in-flight' }), dataPlaneSandboxKind({})],
      seed: options.seed ?? 7,
      quiet: QUIET,
      services: {
        'sandbox.address': () => 'worker.local:7000',
        'sandbox.create': (input) => delayed(createMs, { address: `${(input as SandboxCreateInput).nodeId}.local:7000` }),
        'sandbox.destroy': () => null,
        'sandbox.invoke': (input) => {
          const { sandboxId } = input as { sandboxId: string };
          this.invocations += 1;
          if (this.broken.has(sandboxId)) return delayedFailure(1, 'SANDBOX_CRASHED', `sandbox ${sandboxId} crashed`);
          return delayed(this.holdMs, { status: 200, headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode(`ok from ${sandboxId}`) });
        },
      },
    });
    this.sim.spawn(schedulerAddress, { term: TERM, policy: 'round-robin' });
    for (const nodeId of this.nodeIds) {
      this.sim.spawn(nodeAddress(nodeId), { nodeId, capacity: options.capacity ?? { cpuMilli: 16_000, memoryMiB: 32_768, slots: 100 } });
      this.sim.tell(nodeAddress(nodeId), { type: 'node.start' });
    }
  }

  /** Register a function, as the control plane does on create. */
  async register(input: Record<string, unknown>): Promise<FunctionSpec> {
    const parsed = parseFunctionSpec({ runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' }, ...input });
    if (!parsed.ok) throw new Error(`bad spec: ${JSON.stringify(parsed.errors)}`);
    this.sim.note(`register ${parsed.spec.name}`);
    this.sim.spawn(functionAddress(parsed.spec.name), { spec: parsed.spec, term: TERM, dataplanes: [DATAPLANE_ID] });
    await this.sim.request(functionAddress(parsed.spec.name), { type: 'fn.configure', spec: parsed.spec });
    return parsed.spec;
  }

  /** Send `count` invocations through the data plane's router; the outcomes settle as time advances. */
  invoke(name: string, count: number, options: InvokeOptions = {}): Promise<InvocationOutcome>[] {
    this.holdMs = options.holdMs ?? 0;
    const body = new TextEncoder().encode('ping');
    return Array.from({ length: count }, () =>
      this.sim.ask<InvocationOutcome>(routerAddress(name), { type: 'rt.invoke', invocation: { method: 'POST', path: '/', headers: {}, body } }, 600_000),
    );
  }

  breakSandbox(sandboxId: string): void {
    this.broken.add(sandboxId);
  }

  status(name: string): Promise<FunctionStatus> {
    return this.sim.request<FunctionStatus>(functionAddress(name), { type: 'fn.status' });
  }

  nodes(): Promise<NodeView[]> {
    return this.sim.request<NodeView[]>(schedulerAddress, { type: 'sch.nodes' });
  }

  /** Sandboxes each live node actor runs. */
  async running(): Promise<Record<string, number>> {
    const counts: Record<string, number> = {};
    for (const nodeId of this.nodeIds) {
      if (this.sim.state(nodeAddress(nodeId)) === undefined) continue;
      counts[nodeId] = ((await this.sim.request<unknown[]>(nodeAddress(nodeId), { type: 'node.list' })) ?? []).length;
    }
    return counts;
  }

  alive(address: Address): boolean {
    return this.sim.state(address) !== undefined;
  }

  /** One line summing up the function for the transcript. */
  async describe(name: string): Promise<string> {
    const s = await this.status(name);
    const line = `${name}: desired=${s.desired} creating=${s.creating} ready=${s.ready} draining=${s.draining} endpointVersion=${s.endpointVersion}`;
    this.sim.note(line);
    return line;
  }
}

/** Counts outcomes by status, e.g. `200x50` or `200x3 504x1`. */
export function tally(outcomes: readonly InvocationOutcome[]): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.ok ? `${o.status}${o.coldStart ? 'c' : ''}` : `${o.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].sort().map(([k, n]) => `${k}x${n}`).join(' ');
}
