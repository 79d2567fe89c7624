// Holds N concurrent keep-alive HTTP connections open through a path, for the memory figure
// ("ztunnel RSS while carrying 1,000 concurrent connections"). Each connection sends one GET
// and waits for the answer; once all answered it prints `held N` and keeps them open until
// stdin closes or it is signalled (bounded by --max-ms).
//
//   node dist/bench/suite/hold-conns.js --host 10.x.y.z --port 8080 --count 1000 [--max-ms 30000]
import net from 'node:net';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? def) : def;
}

async function main(): Promise<void> {
  const host = arg('host', '127.0.0.1');
  const port = Number(arg('port', '8080'));
  const count = Number(arg('count', '1000'));
  const maxMs = Number(arg('max-ms', '30000'));
  const sockets: net.Socket[] = [];
  const done = () => { for (const s of sockets) s.destroy(); process.exit(0); };
  setTimeout(done, maxMs).unref();
  process.stdin.on('end', done).on('close', done).resume();
  process.once('SIGTERM', done);
  let answered = 0;
  let failed = 0;
  await new Promise<void>((resolve) => {
    const open = (n: number) => {
      for (let k = 0; k < n; k++) {
        const s = net.connect({ host, port });
        sockets.push(s);
        let got = false;
        s.on('connect', () => s.write(`GET /hold HTTP/1.1\r\nHost: ${host}\r\n\r\n`));
        s.on('data', () => {
          if (got) return;
          got = true;
          answered++;
          if (answered + failed === count) resolve();
        });
        s.on('error', () => {
          if (got) return;
          got = true;
          failed++;
          if (answered + failed === count) resolve();
        });
      }
    };
    // Open in batches of 100 so the listen backlogs never overflow.
    let opened = 0;
    const tick = () => {
      const n = Math.min(100, count - opened);
      open(n);
      opened += n;
      if (opened < count) setTimeout(tick, 20);
    };
    tick();
  });
  process.stdout.write(`held ${answered} failed ${failed}\n`);
}

void main();
