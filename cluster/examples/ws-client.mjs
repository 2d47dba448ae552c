// Invoke a function several times over one WebSocket connection (requests multiplexed by id).
// Node 20 needs --experimental-websocket for its built-in client:
//   node --experimental-websocket cluster/examples/ws-client.mjs hello 5 [ws://127.0.0.1:8080/ws]
const [name = 'hello', count = '3', url = 'ws://127.0.0.1:8080/ws'] = process.argv.slice(2);
const socket = new WebSocket(url);
let answered = 0;
socket.addEventListener('open', () => {
  for (let id = 1; id <= Number(count); id++) socket.send(JSON.stringify({ id, function: name, body: `request ${id}` }));
});
socket.addEventListener('message', (event) => {
  const reply = JSON.parse(event.data);
  console.log(`#${reply.id} ${reply.status} ${reply.body ?? reply.bodyBase64 ?? ''}${reply.error ? ` ${JSON.stringify(reply.error)}` : ''}`);
  if (++answered === Number(count)) socket.close();
});
socket.addEventListener('error', () => {
  console.error(`cannot reach ${url}; is \`dirigent up\` running?`);
  process.exitCode = 1;
});
