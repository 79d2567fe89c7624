import { startEcho } from '../../cluster/apps/echo.js';
import { parseCommandArgs, type Command } from '../command.js';
import { APP_ECHO } from './specs.js';

export const appEchoCommand: Command = {
  ...APP_ECHO,
  help: `Usage: ambit app echo [--port 8080] [--host 0.0.0.0]

Answers HTTP/1.1 and HTTP/2 cleartext requests with JSON saying which pod, namespace, node
and version answered, and what arrived (method, path, protocol, headers, peer). Anything
that is not HTTP is echoed back as raw TCP. Reads POD_NAME, POD_NAMESPACE, NODE_NAME,
POD_IP, SERVICE_ACCOUNT and POD_LABELS (set by \`ambit up\` for every pod).

Paths for testing: /status/<code>, /delay/<ms>, /flaky (503 every other request),
/stream/<bytes>.
`,
  async run(argv, io) {
    const { values } = parseCommandArgs(this, argv, { port: { type: 'string', default: '8080' }, host: { type: 'string', default: '0.0.0.0' } });
    const server = await startEcho({
      port: Number(values.port), host: values.host,
      onRequest: (r) => io.err(`${JSON.stringify({ time: new Date().toISOString(), msg: 'request', ...r })}\n`),
    });
    io.err(`echo listening on ${values.host}:${values.port}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => server.close(() => resolve());
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
    return 0;
  },
};
