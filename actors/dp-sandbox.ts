// The data plane's actor for one sandbox (kind `dpsandbox`, colocated with its function's router): it holds
// the sandbox's concurrency slots, calls the sandbox through the data plane's invoke service, and answers the
// edge's pending ask itself, so a response takes no extra hop back through the router. It then tells the router
// the slot is free, and whether the sandbox looked broken.
//
// Releases are batched: the first request answered after a release sends this actor an `sb.release`, which
// lands behind the answers already in its mailbox (a socket read delivers a worker's answers together), so the
// router takes one step per batch instead of one per request. A broken sandbox, a refused request and a
// closing actor release at once: the router must learn of those before it routes again.
//
// A request that never reached the sandbox (its worker could not be connected to: killed, say) is not
// answered 502: it goes back to the router (`rt.forwarded`, behind the release that marks this sandbox broken)
// to be placed on another sandbox or to wait for one. A request that was sent and then lost its connection may
// have run, so it is answered 502 and never sent again. Each return breaks one sandbox, which the router never
// picks again, so a request comes back at most once per sandbox of its function.
//
// Pure: the connection to the sandbox is the host's `call` service (default `sandbox.invoke`). The router spawns
// one per endpoint and closes it when the endpoint drains or breaks; this actor never decides routing.

import { assertNever, type ActorError, type ActorKind, type Address, type Effect, type ReplyTo, type Step } from './actor.js';
import {
  routerAddress,
  type DataPlaneSandboxMessage,
  type Endpoint,
  type Invocation,
  type InvocationOutcome,
  type RouterMessage,
} from './messages.js';
import { SOCKET_ERROR_CODES, type ErrorCode } from './errors.js';

export const DEFAULT_INVOKE_SERVICE = 'sandbox.invoke';

export interface DataPlaneSandboxConfig {
  /** Name of the host service that performs one invocation (input `SandboxInvokeInput`, value `SandboxInvokeOutput`). */
  readonly invokeService?: string;
}

/** The `spawn` init argument the router gives each data-plane sandbox actor. */
export interface DataPlaneSandboxInit {
  readonly functionName: string;
  readonly endpoint: Endpoint;
  /** Longest one invocation may run, ms (the function's `timeoutMs` when the endpoint was added). */
  readonly timeoutMs: number;
  /** The router replica that spawned it, which its releases go to (default: the function's `routerAddress`). */
  readonly router?: Address;
}

export interface SandboxInvokeInput {
  /** `host:port` of the worker's invocation server. */
  readonly address: string;
  readonly sandboxId: string;
  readonly invocation: Invocation;
  /** ms. */
  readonly timeoutMs: number;
}

export interface SandboxInvokeOutput {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/**
 * Service error codes after which the sandbox must get no more requests: it is gone or timed out (the thread
 * runtime kills a sandbox on timeout), its thread or process died, or its worker cannot be reached (Node's
 * socket errors and undici's). Any other failure (say, a bad response) fails only that one request.
 */
export const BROKEN_SANDBOX_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SANDBOX_GONE',
  'SANDBOX_TIMEOUT',
  'SANDBOX_CRASHED',
  // The data plane's sandbox pool (cluster/data-plane/sandbox-pool.ts): the worker cannot be reached.
  'CONNECTION_FAILED',
  'CONNECTION_LOST',
  ...SOCKET_ERROR_CODES,
]);

/**
 * Error codes that say the request never left the data plane: the connection to the worker could not be made
 * (the pool's CONNECTION_FAILED, and the raw connect errors of Node and undici). ETIMEDOUT is not one: a read
 * may time out too.
 */
export const NEVER_SENT_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['CONNECTION_FAILED', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

export interface DataPlaneSandboxState {
  readonly functionName: string;
  readonly router: Address;
  readonly endpoint: Endpoint;
  /** ms. */
  readonly timeoutMs: number;
  /** `closing`: `sb.close` arrived; the actor stops once `inFlight` is 0 and takes no new request. */
  readonly phase: 'open' | 'closing';
  /** Requests handed to the invoke service and not yet answered. */
  readonly inFlight: number;
  /** Requests answered whose slots the router was not told of yet. */
  readonly unreleased: number;
  /** An `sb.release` is in this actor's mailbox: it must not stop before that arrives (it would be a dead letter). */
  readonly releaseQueued: boolean;
  /** Requests answered with the sandbox's own response. */
  readonly served: number;
  /** Requests answered 502 because the invoke service failed. */
  readonly failed: number;
  /** Requests given back to the router because they never reached the sandbox (NEVER_SENT_CODES). */
  readonly returned: number;
  /** Requests answered 502 without calling the sandbox (no free slot, or closing). Non-zero means a router bug. */
  readonly refused: number;
}

type Effects = Effect<DataPlaneSandboxMessage>[];

export function dataPlaneSandboxKind(config: DataPlaneSandboxConfig = {}): ActorKind<DataPlaneSandboxState, DataPlaneSandboxMessage> {
  const invokeService = config.invokeService ?? DEFAULT_INVOKE_SERVICE;
  if (invokeService === '') throw new RangeError('dpsandbox: invokeService must be a non-empty service name, got ""');
  return {
    kind: 'dpsandbox',
    init(address, arg) {
      const init = arg as Partial<DataPlaneSandboxInit> | undefined;
      if (typeof init?.functionName !== 'string' || init.endpoint === undefined || typeof init.timeoutMs !== 'number' || !(init.timeoutMs > 0)) {
        throw new TypeError(`dpsandbox ${address.id}: init needs { functionName, endpoint, timeoutMs > 0 ms }, got ${JSON.stringify(arg)}`);
      }
      return { functionName: init.functionName, router: init.router ?? routerAddress(init.functionName), endpoint: init.endpoint, timeoutMs: init.timeoutMs, phase: 'open', inFlight: 0, unreleased: 0, releaseQueued: false, served: 0, failed: 0, returned: 0, refused: 0 };
    },
    step: (state, message, ctx) => step(state, message, ctx.self, invokeService),
    summary: (state) => ({
      sandboxId: state.endpoint.sandboxId,
      address: state.endpoint.address,
      phase: state.phase,
      inFlight: state.inFlight,
      unreleased: state.unreleased,
      slots: state.endpoint.concurrency,
      served: state.served,
      failed: state.failed,
      returned: state.returned,
      refused: state.refused,
    }),
  };
}

function step(state: DataPlaneSandboxState, message: DataPlaneSandboxMessage, self: Address, invokeService: string): Step<DataPlaneSandboxState, DataPlaneSandboxMessage> {
  switch (message.type) {
    case 'sb.invoke': {
      const { sandboxId, concurrency } = state.endpoint;
      if (state.phase === 'closing' || state.inFlight >= concurrency) {
        const why = state.phase === 'closing' ? 'is closing' : `has no free slot (${state.inFlight} of ${concurrency} requests in flight)`;
        const effects: Effects = [
          { type: 'log', level: 'warn', text: `refused a request: sandbox ${sandboxId} ${why}` },
          reply(message.replyTo, failure(state, `sandbox ${sandboxId} ${why}`, message.queuedMs, message.coldStart)),
          released(state, state.unreleased + 1, false),
        ];
        return { state: changed(state, { unreleased: 0, refused: state.refused + 1 }), effects };
      }
      const input: SandboxInvokeInput = { address: state.endpoint.address, sandboxId, invocation: message.invocation, timeoutMs: state.timeoutMs };
      const { replyTo, coldStart, queuedMs, invocation } = message;
      return {
        state: changed(state, { inFlight: state.inFlight + 1 }),
        effects: [{ type: 'call', service: invokeService, input, then: (result) => ({ type: 'sb.done', replyTo, coldStart, queuedMs, result, invocation }) }],
      };
    }
    case 'sb.done': {
      const inFlight = Math.max(0, state.inFlight - 1);
      const effects: Effects = [];
      const output = message.result.ok ? asOutput(message.result.value) : undefined;
      let broken = false;
      let returned = false;
      if (output !== undefined) {
        const outcome: InvocationOutcome = {
          ok: true,
          status: output.status,
          headers: output.headers,
          body: output.body,
          sandboxId: state.endpoint.sandboxId,
          coldStart: message.coldStart,
          queuedMs: message.queuedMs,
          version: state.endpoint.version,
        };
        effects.push(reply(message.replyTo, outcome));
      } else {
        const error: ActorError = message.result.ok
          ? { code: 'BAD_RESPONSE', message: 'the invoke service returned no { status, headers, body }' }
          : message.result.error;
        returned = NEVER_SENT_CODES.has(error.code);
        broken = returned || BROKEN_SANDBOX_CODES.has(error.code);
        if (returned) effects.push({ type: 'log', level: 'warn', text: `sandbox ${state.endpoint.sandboxId} unreachable (${error.code}: ${error.message}): its request goes back to the router` });
        else effects.push(reply(message.replyTo, failure(state, `sandbox ${state.endpoint.sandboxId} failed: ${error.code}: ${error.message}`, message.queuedMs, message.coldStart)));
      }
      const releaseNow = broken || state.phase === 'closing';
      const queueRelease = !releaseNow && !state.releaseQueued;
      if (releaseNow) effects.push(released(state, state.unreleased + 1, broken));
      else if (queueRelease) effects.push({ type: 'send', to: self, message: RELEASE });
      // After the release that marks this sandbox broken, so the router never places it here again.
      if (returned) effects.push({ type: 'send', to: state.router, message: { type: 'rt.forwarded', invocation: message.invocation, replyTo: message.replyTo } satisfies RouterMessage });
      const next = changed(state, {
        inFlight,
        unreleased: releaseNow ? 0 : state.unreleased + 1,
        releaseQueued: state.releaseQueued || queueRelease,
        served: output !== undefined ? state.served + 1 : state.served,
        failed: output !== undefined || returned ? state.failed : state.failed + 1,
        returned: returned ? state.returned + 1 : state.returned,
      });
      if (isDone(next)) effects.push({ type: 'stop' });
      return { state: next, effects };
    }
    case 'sb.release': {
      // Nothing left to tell when a broken sandbox, a refusal or sb.close released everything since.
      const next = changed(state, { unreleased: 0, releaseQueued: false });
      const effects: Effects = state.unreleased > 0 ? [released(state, state.unreleased, false)] : [];
      if (isDone(next)) effects.push({ type: 'stop' });
      return { state: next, effects };
    }
    case 'sb.close': {
      const next = changed(state, { phase: 'closing', unreleased: 0 });
      const effects: Effects = state.unreleased > 0 ? [released(state, state.unreleased, false)] : [];
      if (isDone(next)) effects.push({ type: 'stop' });
      return { state: next, effects };
    }
    default:
      return assertNever(message, 'dpsandbox message');
  }
}

const RELEASE: DataPlaneSandboxMessage = { type: 'sb.release' };

/** Closing, nothing in flight and no sb.release still to come: the actor stops. */
function isDone(state: DataPlaneSandboxState): boolean {
  return state.phase === 'closing' && state.inFlight === 0 && !state.releaseQueued;
}

/**
 * `state` with `changes`: every field listed, since V8 spreads an object of this many fields several times
 * slower than it builds a literal, and this runs twice per request. A field added to the state goes here too.
 */
function changed(state: DataPlaneSandboxState, c: Partial<DataPlaneSandboxState>): DataPlaneSandboxState {
  return {
    functionName: c.functionName === undefined ? state.functionName : c.functionName,
    router: c.router === undefined ? state.router : c.router,
    endpoint: c.endpoint === undefined ? state.endpoint : c.endpoint,
    timeoutMs: c.timeoutMs === undefined ? state.timeoutMs : c.timeoutMs,
    phase: c.phase === undefined ? state.phase : c.phase,
    inFlight: c.inFlight === undefined ? state.inFlight : c.inFlight,
    unreleased: c.unreleased === undefined ? state.unreleased : c.unreleased,
    releaseQueued: c.releaseQueued === undefined ? state.releaseQueued : c.releaseQueued,
    served: c.served === undefined ? state.served : c.served,
    failed: c.failed === undefined ? state.failed : c.failed,
    returned: c.returned === undefined ? state.returned : c.returned,
    refused: c.refused === undefined ? state.refused : c.refused,
  };
}

function reply(to: ReplyTo, outcome: InvocationOutcome): Effect<DataPlaneSandboxMessage> {
  return { type: 'reply', to, value: outcome };
}

function failure(state: DataPlaneSandboxState, message: string, queuedMs: number, coldStart: boolean): InvocationOutcome {
  return { ok: false, status: 502, code: 'SANDBOX_FAILED', message, queuedMs, sandboxId: state.endpoint.sandboxId, coldStart };
}

function released(state: DataPlaneSandboxState, count: number, failed: boolean): Effect<DataPlaneSandboxMessage> {
  const message: RouterMessage = { type: 'rt.released', sandboxId: state.endpoint.sandboxId, count, failed };
  return { type: 'send', to: state.router, message };
}

/** The service's answer when it has the shape of one (checked, not copied: this runs per request). */
function asOutput(value: unknown): SandboxInvokeOutput | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const { status, headers, body } = value as Partial<SandboxInvokeOutput>;
  if (typeof status !== 'number' || headers === null || typeof headers !== 'object' || !(body instanceof Uint8Array)) return undefined;
  return value as SandboxInvokeOutput;
}
