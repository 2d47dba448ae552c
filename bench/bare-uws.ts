// The ceiling for bench/warm.ts and bench/ws.ts: a bare uWebSockets.js app on one thread answering "ok" to
// any HTTP request and echoing every WebSocket message on /ws, run as a child process. It prints its port on stdout and exits when its stdin closes (so it never
// outlives the benchmark, even one that crashed).
import { loadNativeUws } from '../cluster/data-plane/uws.js';

const uws = loadNativeUws();
const app = uws.App();
app.any('/*', (res) => {
  // A POST's empty body: answering at once is what a hello-world does, and is valid for content-length 0.
  res.end('ok');
});
app.ws('/ws', {
  maxPayloadLength: 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  compression: uws.DISABLED,
  message: (ws, message, isBinary) => {
    ws.send(message, isBinary);
  },
});
app.listen('127.0.0.1', 0, (socket) => {
  if (!socket) {
    console.error('bare-uws: cannot listen');
    process.exit(1);
  }
  process.stdout.write(`${uws.us_socket_local_port(socket)}\n`);
  const stop = () => {
    uws.us_listen_socket_close(socket);
    (app as unknown as { close?: () => void }).close?.();
    process.exit(0);
  };
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
  process.on('SIGTERM', stop);
});
