// The benchmark's HTTP server: the same program behind every path. A fixed small answer (no
// disk, no logging) so the server costs the same on every path and the proxies are what differ.
//
//   node dist/bench/suite/http-server.js --port 8080
import http from 'node:http';

const BODY = Buffer.from('ambit bench: ok\n'.padEnd(128, '.') + '\n');

function main(): void {
  const i = process.argv.indexOf('--port');
  const port = i >= 0 ? Number(process.argv[i + 1]) : 8080;
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length });
    res.end(BODY);
  });
  server.keepAliveTimeout = 120_000;
  server.headersTimeout = 130_000;
  server.maxConnections = 20_000;
  server.listen(port, '0.0.0.0', () => process.stdout.write(`listening ${port}\n`));
  const stop = () => { server.closeAllConnections(); server.close(() => process.exit(0)); setTimeout(() => process.exit(0), 500).unref(); };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main();
