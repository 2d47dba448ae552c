// The in-process cluster harness: every real actor kind of the control plane, the workers and one
// data plane in one deterministic Simulation (memory transport, manual clock, seeded randomness),
// with fake ports in place of sandbox runtimes. Scenario tests drive it as scripts and compare the
// transcript with a stored one.
//
// Failures it can inject, each standing for what the rest of the cluster would see:
// - a leader's death or partition: `killLeader` removes the function, autoscaler and scheduler actors (a
//   partitioned old leader differs only by its commands arriving late, which a script delivers by hand);
// - a leader change: `failover` does what ControlPlane.reconstruct does for a new term;
// - a worker the leader cannot reach: `partition` (its node actor runs on, but nothing gets in or out),
//   `reconnect` (its worker connects again, as ControlPlane.accepted -> reconstructFrom);
// - a data plane's death and return: `killDataplane`, `restartDataplane`.
import { printAddress, type ActorKind, type Address, type Effect } from '../../actors/actor.js';
import { printMessage } from '../../actors/printer.js';
import { autoscalerKind } from '../../actors/autoscaler-actor.js';
import { dataPlaneSandboxKind } from '../../actors/dp-sandbox.js';
import { functionKind, type FunctionState } from '../../actors/function.js';
import { parseFunctionSpec, updateFunctionSpec, type FunctionSpec } from '../../actors/function-spec.js';
import {
  functionAddress,
  nodeAddress,
  routerAddress,
  schedulerAddress,
  type FunctionStatus,
  type InvocationOutcome,
  type NodeCapacity,
  type NodeView,
  type SandboxReport,
} from '../../actors/messages.js';
import { nodeKind, type NodeInput, type NodeState, type SandboxCreateInput } from '../../actors/node.js';
import { routerKind, type RouterState } from '../../actors/router.js';
import { schedulerKind } from '../../actors/scheduler.js';
import { delayed, delayedFailure, Simulation } from '../../runtime/sim.js';
import { RECONSTRUCT_TIMEOUT_MS } from '../control-plane/control-plane.js';

export const DATAPLANE_ID = 'dp1';
export const TERM = 1;

/** Per-delivery lines left out of transcripts: periodic chatter and the per-request hot path. */
const QUIET = ['as.tick', 'as.metric', 'fn.load', 'rt.tick', 'sch.checkHeartbeats', 'sch.heartbeat', 'node.heartbeat', 'rt.invoke', 'sb.invoke', 'sb.done', 'sb.release', 'rt.released', 'rt.expire'];

export interface HarnessOptions {
  readonly nodes: number;
  readonly capacity?: NodeCapacity;
  /** Simulated sandbox creation time, ms. */
  readonly createMs?: number;
  /** Creation time on particular nodes (a slow node), ms; the others take `createMs`. */
  readonly nodeCreateMs?: Readonly<Record<string, number>>;
  readonly seed?: number;
}

export interface FailoverOptions {
  /** The new leader's term: higher than every earlier one. */
  readonly term: number;
  /** Bound on the wait for the nodes to list their sandboxes, ms (ControlPlane's `reconstructTimeoutMs`). */
  readonly listTimeoutMs?: number;
}

export interface FailoverReport {
  /** Nodes that listed their sandboxes within the bound. */
  readonly listed: readonly string[];
  /** Nodes that did not (killed or partitioned): adopted when they reconnect. */
  readonly missing: readonly string[];
  /** Sandboxes found on the listed nodes, of every function. */
  readonly reports: readonly SandboxReport[];
}

/** One sandbox as its node actor holds it, for assertions (read from state: nothing shows in the transcript). */
export interface NodeSandbox {
  readonly sandboxId: string;
  readonly functionName: string;
  readonly phase: 'creating' | 'ready' | 'deleting';
}

export interface InvokeOptions {
  /** How long the sandbox holds the request, ms of simulated time. */
  readonly holdMs?: number;
}

/** A running cluster in one Simulation, plus helpers that read like a scenario script. */
export class Harness {
  readonly sim: Simulation;
  readonly nodeIds: string[];
  private readonly capacity: NodeCapacity;
  /** Sandbox ids whose next invocation fails (a crashed sandbox seen by the data plane). */
  private readonly broken = new Set<string>();
  /** Nodes whose worker the control plane cannot reach (see `partition`). */
  private readonly partitioned = new Set<string>();
  /** Desired state, as the store holds it: the specs a new leader loads. */
  private readonly specs = new Map<string, FunctionSpec>();
  /** Functions whose sandboxes fail to start, with the runtime's reason (a module that does not load). */
  private readonly failing = new Map<string, string>();
  /** `sandbox.create` calls so far, by function (creation attempts). */
  readonly creations = new Map<string, number>();
  private holdMs = 0;
  invocations = 0;
  /** The current leader's term: carried by what `register` and `failover` start. */
  term = TERM;
  /** Connected data planes (router replica ids): what draining sandboxes wait for. */
  dataplanes: readonly string[] = [DATAPLANE_ID];
  /** Every `sandbox.create` call, in order, by sandbox id: a sandbox created twice shows up twice. */
  readonly created: string[] = [];

  constructor(options: HarnessOptions) {
    const createMs = options.createMs ?? 0;
    this.nodeIds = Array.from({ length: options.nodes }, (_, i) => `n${i + 1}`);
    this.sim = new Simulation({
      kinds: [
        functionKind,
        autoscalerKind,
        schedulerKind,
        partitionable(nodeKind, this.partitioned),
        routerKind({ dataplaneId: DATAPLANE_ID, policy: 'least-in-flight' }),
        dataPlaneSandboxKind({}),
      ],
      seed: options.seed ?? 7,
      quiet: QUIET,
      services: {
        'sandbox.address': () => 'worker.local:7000',
        'sandbox.create': (input) => {
          const { nodeId, sandboxId, template } = input as SandboxCreateInput;
          this.created.push(sandboxId);
          this.creations.set(template.name, (this.creations.get(template.name) ?? 0) + 1);
          const reason = this.failing.get(template.name);
          if (reason !== undefined) return delayedFailure(options.nodeCreateMs?.[nodeId] ?? createMs, 'SANDBOX_CREATE_FAILED', reason);
          return delayed(options.nodeCreateMs?.[nodeId] ?? createMs, { address: `${nodeId}.local:7000` });
        },
        'sandbox.destroy': () => null,
        'sandbox.invoke': (input) => {
          const { sandboxId } = input as { sandboxId: string };
          this.invocations += 1;
          if (this.broken.has(sandboxId)) return delayedFailure(1, 'SANDBOX_CRASHED', `sandbox ${sandboxId} crashed`);
          return delayed(this.holdMs, { status: 200, headers: { 'content-type': 'text/plain' }, body: new TextEncoder().encode(`ok from ${sandboxId}`) });
        },
      },
    });
    this.capacity = options.capacity ?? { cpuMilli: 16_000, memoryMiB: 32_768, slots: 100 };
    this.sim.spawn(schedulerAddress, { term: TERM, policy: 'round-robin' });
    for (const nodeId of this.nodeIds) {
      this.sim.spawn(nodeAddress(nodeId), { nodeId, capacity: this.capacity, runtime: 'simulated' });
      this.sim.tell(nodeAddress(nodeId), { type: 'node.start' });
    }
  }

  /** Register a function, as the control plane does on create. */
  async register(input: Record<string, unknown>): Promise<FunctionSpec> {
    const parsed = parseFunctionSpec({ runtime: 'simulated', source: { kind: 'builtin', workload: 'echo' }, ...input });
    if (!parsed.ok) throw new Error(`bad spec: ${JSON.stringify(parsed.errors)}`);
    this.sim.command(`register ${printMessage(input)}`);
    this.specs.set(parsed.spec.name, parsed.spec);
    this.sim.spawn(functionAddress(parsed.spec.name), { spec: parsed.spec, term: this.term, dataplanes: this.dataplanes });
    await this.sim.request(functionAddress(parsed.spec.name), { type: 'fn.configure', spec: parsed.spec });
    return parsed.spec;
  }

  /** Update a function's spec, as the control plane does on update (stored, then `fn.configure`). */
  async update(name: string, patch: Record<string, unknown>): Promise<FunctionSpec> {
    const current = this.specs.get(name);
    if (current === undefined) throw new Error(`no function named ${name}`);
    const updated = updateFunctionSpec(current, patch);
    if (!updated.ok) throw new Error(`bad update: ${JSON.stringify(updated.errors)}`);
    this.sim.command(`update ${name} ${printMessage(patch)}`);
    this.sim.note(`${name}: spec version ${updated.spec.version}`);
    this.specs.set(name, updated.spec);
    await this.sim.request(functionAddress(name), { type: 'fn.configure', spec: updated.spec });
    return updated.spec;
  }

  /** From now on, sandboxes of `name` fail to start with `reason`; undefined: they start again. */
  failCreation(name: string, reason: string | undefined): void {
    this.sim.command(reason === undefined ? `creations of ${name} succeed` : `creations of ${name} fail: ${reason}`);
    if (reason === undefined) this.failing.delete(name);
    else this.failing.set(name, reason);
  }

  /** Send `count` invocations through the data plane's router; the outcomes settle as time advances. */
  invoke(name: string, count: number, options: InvokeOptions = {}): Promise<InvocationOutcome>[] {
    this.sim.command(`invoke ${name} x${count}${options.holdMs === undefined ? '' : ` holdMs=${options.holdMs}`}`);
    this.holdMs = options.holdMs ?? 0;
    const body = new TextEncoder().encode('ping');
    return Array.from({ length: count }, () =>
      this.sim.ask<InvocationOutcome>(routerAddress(name), { type: 'rt.invoke', invocation: { method: 'POST', path: '/', headers: {}, body } }, 600_000),
    );
  }

  breakSandbox(sandboxId: string): void {
    this.sim.command(`break sandbox ${sandboxId}`);
    this.broken.add(sandboxId);
  }

  status(name: string): Promise<FunctionStatus> {
    this.sim.command(`status ${name}`);
    return this.sim.request<FunctionStatus>(functionAddress(name), { type: 'fn.status' });
  }

  nodes(): Promise<NodeView[]> {
    this.sim.command('nodes');
    return this.sim.request<NodeView[]>(schedulerAddress, { type: 'sch.nodes' });
  }

  /** Sandboxes each live node actor runs. */
  async running(): Promise<Record<string, number>> {
    this.sim.command('running');
    const counts: Record<string, number> = {};
    for (const nodeId of this.nodeIds) {
      if (this.sim.state(nodeAddress(nodeId)) === undefined) continue;
      counts[nodeId] = ((await this.sim.request<unknown[]>(nodeAddress(nodeId), { type: 'node.list' })) ?? []).length;
    }
    this.sim.note(`running ${printMessage(counts)}`);
    return counts;
  }

  alive(address: Address): boolean {
    return this.sim.state(address) !== undefined;
  }

  /** Every sandbox each live node actor holds, whatever its phase (read from state, for assertions). */
  onNodes(): Record<string, NodeSandbox[]> {
    const held: Record<string, NodeSandbox[]> = {};
    for (const nodeId of this.nodeIds) {
      const state = this.sim.state<NodeState>(nodeAddress(nodeId));
      if (state === undefined) continue;
      held[nodeId] = [...state.sandboxes].map(([sandboxId, entry]) => ({ sandboxId, functionName: entry.template.name, phase: entry.phase })).sort((a, b) => (a.sandboxId < b.sandboxId ? -1 : 1));
    }
    return held;
  }

  /** The function actor's state (read from state, for assertions: nothing shows in the transcript). */
  functionState(name: string): FunctionState | undefined {
    return this.sim.state<FunctionState>(functionAddress(name));
  }

  /** The function's router as the data plane holds it (read from state, for assertions). */
  router(name: string): RouterState | undefined {
    return this.sim.state<RouterState>(routerAddress(name));
  }

  /**
   * The leader dies (or is cut off from everything, which the rest of the cluster cannot tell apart): its
   * function, autoscaler and scheduler actors vanish with their timers. Workers and data planes run on.
   */
  killLeader(how: 'killed' | 'partitioned' = 'killed'): void {
    this.sim.command(`leader of term ${this.term} ${how}`);
    for (const kind of ['function', 'autoscaler', 'scheduler']) for (const address of this.sim.list(kind)) this.sim.kill(address);
  }

  /**
   * A new leader of `term` takes over, as ControlPlane.start and `reconstruct` do: a scheduler of the new
   * term; every reachable worker reconnects (its nodes register again and are asked `node.list`); the leader
   * waits until every node has listed or `listTimeoutMs` has passed (the functions are spawned before, so that
   * a creation finishing meanwhile reaches one); then the scheduler adopts what was found,
   * sandboxes of functions that no longer exist get `node.delete`, and each stored function adopts its
   * sandboxes (`fn.adopt`) and is configured, which pushes its first snapshot under the new term and holds
   * scale-down for one stable window. Nodes that did not list come later with `reconnect`.
   */
  async failover(options: FailoverOptions): Promise<FailoverReport> {
    const { term, listTimeoutMs = RECONSTRUCT_TIMEOUT_MS } = options;
    if (!(term > this.term)) throw new RangeError(`failover: term ${term} must be higher than ${this.term}`);
    const leftOver = ['function', 'autoscaler', 'scheduler'].flatMap((kind) => this.sim.list(kind));
    if (leftOver.length > 0) throw new Error(`failover: the old leader still runs ${leftOver.length} actor(s); killLeader first`);
    this.term = term;
    this.sim.command(`failover to term ${term}`);
    this.sim.note(`leader of term ${term}: ${this.specs.size} function spec(s) loaded; asking ${this.nodeIds.length} node(s) for their sandboxes (wait <= ${listTimeoutMs} ms)`);
    this.sim.spawn(schedulerAddress, { term, policy: 'round-robin' });
    // Spawned before the wait, configured after it (see ControlPlane.loadDesiredState and reconstruct).
    for (const spec of this.specs.values()) this.sim.spawn(functionAddress(spec.name), { spec, term, dataplanes: this.dataplanes, rebuilt: true });
    const lists = new Map<string, SandboxReport[]>();
    for (const nodeId of this.nodeIds) {
      // A dead worker never connects; a partitioned one's messages are lost on the way.
      if (!this.alive(nodeAddress(nodeId))) continue;
      this.sim.tell(nodeAddress(nodeId), { type: 'node.start' });
      this.sim.ask<SandboxReport[]>(nodeAddress(nodeId), { type: 'node.list' }, listTimeoutMs).then(
        (reports) => lists.set(nodeId, reports),
        () => undefined,
      );
    }
    await this.sim.run();
    if (lists.size < this.nodeIds.length) await this.sim.advance(listTimeoutMs);
    const listed = this.nodeIds.filter((id) => lists.has(id));
    const missing = this.nodeIds.filter((id) => !lists.has(id));
    const reports = listed.flatMap((id) => lists.get(id) ?? []);
    this.sim.note(`leader of term ${term}: ${reports.length} sandbox(es) listed by ${listed.join(', ') || 'no node'}${missing.length > 0 ? `; no answer from ${missing.join(', ')}` : ''}; serving`);
    const byFunction = this.adoptReports(reports);
    for (const spec of this.specs.values()) {
      const sandboxes = byFunction.get(spec.name);
      if (sandboxes) this.sim.tell(functionAddress(spec.name), { type: 'fn.adopt', sandboxes });
      await this.sim.request(functionAddress(spec.name), { type: 'fn.configure', spec });
    }
    return { listed, missing, reports };
  }

  /** The node's worker loses its connection to the control plane: nothing reaches the node actor, nothing leaves it. */
  partition(nodeId: string): void {
    this.sim.command(`partition worker of ${nodeId} from the control plane`);
    this.partitioned.add(nodeId);
  }

  /**
   * The node's worker connects to the leader again, as ControlPlane.accepted -> reconstructFrom: the node
   * registers (a killed node comes back as a restarted worker, with nothing running) and lists its
   * sandboxes, which the scheduler and the functions adopt (`fn.adopt`), or which are deleted when their
   * function no longer exists.
   */
  async reconnect(nodeId: string): Promise<SandboxReport[]> {
    this.partitioned.delete(nodeId);
    const address = nodeAddress(nodeId);
    const restarted = !this.alive(address);
    this.sim.command(`reconnect worker of ${nodeId}`);
    this.sim.note(`worker of ${nodeId} ${restarted ? 'restarted' : 'reconnected'}`);
    if (restarted) this.sim.spawn(address, { nodeId, capacity: this.capacity, runtime: 'simulated', incarnation: `restarted at ${this.sim.now()}` });
    this.sim.tell(address, { type: 'node.start' });
    const reports = await this.sim.request<SandboxReport[]>(address, { type: 'node.list' });
    for (const [name, sandboxes] of this.adoptReports(reports)) this.sim.tell(functionAddress(name), { type: 'fn.adopt', sandboxes });
    await this.sim.run();
    return reports;
  }

  /** As ControlPlane.adoptReports: account with the scheduler, delete what no stored function wants, group the rest. */
  private adoptReports(reports: readonly SandboxReport[]): Map<string, SandboxReport[]> {
    const byFunction = new Map<string, SandboxReport[]>();
    if (reports.length === 0) return byFunction;
    this.sim.tell(schedulerAddress, { type: 'sch.adopt', sandboxes: reports });
    for (const report of reports) {
      if (this.specs.has(report.functionName)) byFunction.set(report.functionName, [...(byFunction.get(report.functionName) ?? []), report]);
      else this.sim.tell(nodeAddress(report.nodeId), { type: 'node.delete', term: this.term, sandboxId: report.sandboxId });
    }
    return byFunction;
  }

  /**
   * The data plane's process dies: its routers and sandbox actors vanish (with the requests they held), and
   * the control plane, seeing the connection close, tells every function the data planes left.
   */
  killDataplane(): void {
    this.sim.command(`lose data plane ${DATAPLANE_ID}`);
    for (const kind of ['router', 'dpsandbox']) for (const address of this.sim.list(kind)) this.sim.kill(address);
    this.dataplanes = [];
    this.announceDataplanes();
  }

  /** A data plane connects again: the functions wait for it again; its routers start empty and ask for a snapshot on first use. */
  restartDataplane(): void {
    this.sim.command(`connect data plane ${DATAPLANE_ID}`);
    this.dataplanes = [DATAPLANE_ID];
    this.announceDataplanes();
  }

  private announceDataplanes(): void {
    for (const name of this.specs.keys()) if (this.alive(functionAddress(name))) this.sim.tell(functionAddress(name), { type: 'fn.dataplanes', ids: this.dataplanes });
  }

  /** Move the manual clock `ms` forward, running the cluster to rest after each timer. */
  advance(ms: number): Promise<void> {
    this.sim.command(`advance ${ms} ms`);
    return this.sim.advance(ms);
  }

  /** A message to an actor from outside (as the control plane's own code sends it), or as if from `from`. */
  tell(to: Address, message: unknown, from?: Address): void {
    this.sim.command(`tell ${printAddress(to)} ${printMessage(message)}${from === undefined ? '' : ` as ${printAddress(from)}`}`);
    this.sim.tell(to, message, from);
  }

  /** Asks an actor from outside and writes its answer into the transcript. */
  async ask<T>(to: Address, message: unknown): Promise<T> {
    this.sim.command(`ask ${printAddress(to)} ${printMessage(message)}`);
    const answer = await this.sim.request<T>(to, message);
    this.sim.note(`answer ${printMessage(answer)}`);
    return answer;
  }

  /** The actor vanishes with its timers (a crash the runtime does not restart). */
  kill(address: Address): void {
    this.sim.command(`kill ${printAddress(address)}`);
    this.sim.kill(address);
  }

  /** One line summing up the function for the transcript. */
  async describe(name: string): Promise<string> {
    this.sim.command(`describe ${name}`);
    const s = await this.sim.request<FunctionStatus>(functionAddress(name), { type: 'fn.status' });
    const line = `${name}: version=${s.version} ${s.state} desired=${s.desired} creating=${s.creating} ready=${s.ready} draining=${s.draining} endpointVersion=${s.endpointVersion}`;
    this.sim.note(line);
    return line;
  }
}

/**
 * The node kind with a network partition around it: while its id is in `cut`, a message from anyone but
 * itself (its timers and runtime calls) is lost, and so is everything it sends out; an ask it makes times
 * out. The node itself runs on, keeping its sandboxes, as a worker that lost its connection does.
 */
function partitionable(kind: ActorKind<NodeState, NodeInput>, cut: ReadonlySet<string>): ActorKind<NodeState, NodeInput> {
  return {
    ...kind,
    step(state, message, ctx) {
      if (!cut.has(ctx.self.id)) return kind.step(state, message, ctx);
      const fromItself = ctx.sender?.kind === ctx.self.kind && ctx.sender.id === ctx.self.id;
      if (!fromItself) return { state, effects: [{ type: 'log', level: 'warn', text: `partitioned: ${message.type} lost` }] };
      const result = kind.step(state, message, ctx);
      const effects: Effect<NodeInput>[] = [];
      for (const effect of result.effects ?? []) {
        switch (effect.type) {
          case 'send': {
            const type = (effect.message as { type?: string }).type ?? '?';
            if (!QUIET.includes(type)) effects.push({ type: 'log', level: 'warn', text: `partitioned: ${type} to ${effect.to.kind}:${effect.to.id} lost` });
            break;
          }
          case 'ask':
            effects.push({ type: 'schedule', afterMs: effect.timeoutMs, message: effect.then({ ok: false, error: { code: 'ASK_TIMEOUT', message: `partitioned: no reply from ${effect.to.kind}:${effect.to.id}` } }) });
            break;
          case 'reply':
          case 'fail':
            break;
          default:
            effects.push(effect);
        }
      }
      return { state: result.state, effects };
    },
  };
}

/** Counts outcomes by status, e.g. `200x50` or `200x3 504x1`; `withVersion`: a 200's key names the version, `200v2`. */
export function tally(outcomes: readonly InvocationOutcome[], withVersion = false): string {
  const counts = new Map<string, number>();
  for (const o of outcomes) {
    const key = o.ok ? `${o.status}${o.coldStart ? 'c' : ''}${withVersion ? `v${o.version}` : ''}` : `${o.status}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return [...counts.entries()].sort().map(([k, n]) => `${k}x${n}`).join(' ');
}
