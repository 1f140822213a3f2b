// `npm run playback-model -- [--port N]`: devflow's playback model on its own, for pointing an
// agent at it by hand (ANTHROPIC_BASE_URL, or a Codex model provider). Ctrl-C stops it.
import { parseArgs } from 'node:util';
import { startPlaybackModel } from './server.ts';

const { values } = parseArgs({ options: { port: { type: 'string', default: '7480' } } });
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`--port: not a port number: ${values.port}\n`);
  process.exit(2);
}
const model = await startPlaybackModel({ port });
process.stdout.write(`devflow playback model on ${model.url}\n`);
process.stdout.write(`  Claude Code: ANTHROPIC_BASE_URL=${model.url} ANTHROPIC_API_KEY=any\n`);
process.stdout.write(`  Codex:       a model provider with base_url = "${model.url}/v1", wire_api = "responses"\n`);
process.stdout.write(`  requests:    ${model.url}/_playback/requests\n`);
const stop = () => void model.close().then(() => process.exit(0));
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
