// An example function for the process runtime: any program that serves HTTP on $PORT. Deploy it with
//   dirigent up --runtime process      (workers that run commands)
//   dirigent deploy web --command "node cluster/examples/server.mjs"
import { createServer } from 'node:http';

createServer((req, res) => {
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`process ${process.pid} got ${req.method} ${req.url}: ${Buffer.concat(chunks).toString('utf8')}\n`);
  });
}).listen(Number(process.env.PORT), '127.0.0.1');
