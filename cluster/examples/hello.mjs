// An example function for the thread runtime: deploy it with
//   dirigent deploy hello --module cluster/examples/hello.mjs
// A handler gets { method, path, headers, body (Uint8Array) } and returns a body (string, bytes or a
// JSON-able object) or { status, headers, body }.
const decoder = new TextDecoder();
let invocations = 0;

export async function handler(request) {
  invocations += 1;
  const name = decoder.decode(request.body).trim() || 'world';
  return {
    status: 200,
    headers: { 'content-type': 'application/json' },
    body: { greeting: `hello, ${name}!`, method: request.method, path: request.path, invocationsOnThisSandbox: invocations },
  };
}
