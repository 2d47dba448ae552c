// The invocation server of one worker shard: accepts framed connections from data planes and runs each
// request frame on the sandbox it names (protocol in protocol.ts).
import type { LogLevel } from '../../runtime/host.js';
import { listenFrames, type FrameConnection } from '../../runtime/frames.js';
import type { InvokeResponse, Sandbox } from '../sandbox/index.js';
import { REQUEST_CODEC, RESULT_CODEC } from './invoke-codec.js';
import { invokeErrorCode, readRequestFrame, type RequestFrame, type ResultFrame } from './protocol.js';

export interface InvocationServerOptions {
  readonly host: string;
  /** The host in the announced address; default host. */
  readonly advertise?: string;
  /** 0 picks a free port. */
  readonly port: number;
  readonly token: string;
  /** Announced in the handshake's welcome, e.g. `shard-0`. */
  readonly id: string;
  /** The ready sandbox with this id on this shard, if any. */
  readonly lookup: (sandboxId: string) => Sandbox | undefined;
  readonly log: (level: LogLevel, text: string) => void;
}

export interface InvocationServer {
  /** `host:port` data planes connect to. */
  readonly address: string;
  /** Stops listening and closes every connection (their in-flight invocations are abandoned). */
  close(): Promise<void>;
}

export async function serveInvocations(options: InvocationServerOptions): Promise<InvocationServer> {
  const server = await listenFrames({
    host: options.host,
    port: options.port,
    token: options.token,
    role: 'worker',
    id: options.id,
    accept: (connection, hello) => {
      serve(connection, `${hello.role}:${hello.id}`, options);
      return undefined;
    },
  });
  return { address: `${options.advertise ?? server.host}:${server.port}`, close: () => server.close() };
}

function serve(connection: FrameConnection, peer: string, options: InvocationServerOptions): void {
  // No AbortSignal reaches the sandbox: a closed connection does not cancel its invocations (each is
  // bounded by the function's timeoutMs, and sending on a closed connection is a no-op). Node 20's
  // AbortSignal.any, which the simulated runtime applies to a caller's signal, keeps a reference per call
  // on a long-lived source signal: one per connection leaked ~50 bytes per invocation (measured).
  // Results go back in the format the request came in: the invocation codec, or msgpack (other peers).
  const fail = (i: number, code: Extract<ResultFrame, { e: unknown }>['e']['code'], message: string, binary: boolean) => {
    const frame: ResultFrame = { i, e: { code, message } };
    if (binary) connection.sendWith(RESULT_CODEC, frame);
    else connection.send(frame);
  };
  const reply = (i: number, response: InvokeResponse, binary: boolean) => {
    const frame: ResultFrame = { i, st: response.status, h: response.headers, b: response.body };
    try {
      if (binary) connection.sendWith(RESULT_CODEC, frame);
      else connection.send(frame);
    } catch (error) {
      fail(i, 'INVOKE_FAILED', `the sandbox's response cannot be sent: ${error instanceof Error ? error.message : String(error)}`, binary);
    }
  };
  connection.useCodec(REQUEST_CODEC);
  connection.onFrame((frame, codec) => {
    const binary = codec === REQUEST_CODEC;
    // A throw here would escape into the socket's data handler and take the whole shard thread down.
    try {
      const i = (frame as Partial<RequestFrame> | null)?.i;
      if (typeof i !== 'number') {
        options.log('warn', `invocation server: frame without a numeric request id from ${peer}; closing the connection`);
        connection.destroy();
        return;
      }
      const request = readRequestFrame(frame as Partial<RequestFrame>);
      if (typeof request === 'string') return fail(i, 'BAD_REQUEST', request, binary);
      const sandboxId = (frame as RequestFrame).s;
      const sandbox = options.lookup(sandboxId);
      if (sandbox === undefined) return fail(i, 'SANDBOX_GONE', `no sandbox ${sandboxId} on ${options.id}`, binary);
      // A response ready at once (a warm simulated builtin) is answered without a promise or closures.
      const answer = sandbox.invokeNow === undefined ? sandbox.invoke(request) : sandbox.invokeNow(request);
      if (!(answer instanceof Promise)) return reply(i, answer, binary);
      answer.then(
        (response) => reply(i, response, binary),
        (error: unknown) => fail(i, invokeErrorCode(error), error instanceof Error ? error.message : String(error), binary),
      );
    } catch (error) {
      options.log('error', `invocation server: request from ${peer} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      connection.destroy();
    }
  });
}
