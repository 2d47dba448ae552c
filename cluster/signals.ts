// The one place a process listens for the signals that ask it to stop (Ctrl-C is SIGINT, a supervisor sends
// SIGTERM): roles, `up`, `cluster`, `logs --follow`, `ls --watch` and `replay` all stop through here.

export const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/** Calls `onStop` at the first stop signal (once); the returned function stops listening. */
export function onStopSignal(onStop: (signal: StopSignal) => void): () => void {
  const handlers = STOP_SIGNALS.map((signal) => {
    const handler = () => {
      dispose();
      onStop(signal);
    };
    process.once(signal, handler);
    return [signal, handler] as const;
  });
  const dispose = () => {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  };
  return dispose;
}

/** Resolves with the first stop signal. */
export function stopSignal(): Promise<StopSignal> {
  return new Promise((resolve) => onStopSignal(resolve));
}
