// devflow's playback model: a small HTTP server on 127.0.0.1 that speaks the Anthropic Messages
// API (Claude Code) and the OpenAI Responses API (Codex), both streaming, and plays the scenario
// of the devflow prompt it finds in the conversation. Real agents run against it offline, with no
// key, in tests and demos. It records every request and the usage it served.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { findPrompt, fromAnthropic, fromOpenAi, type Conversation } from './conversation.ts';
import { planReply, type Reply } from './plan.ts';
import { anthropicError, openAiError, writeAnthropic, writeOpenAi, type Usage } from './wire.ts';

export type ModelApi = 'anthropic' | 'openai';

export interface ServedRequest {
  seq: number;
  at: string;
  api: ModelApi;
  /** `turn`: part of the agent's conversation (tools offered); `side`: a title or similar. */
  kind: 'turn' | 'side';
  runId: string | null;
  promptId: string | null;
  promptKind: string | null;
  scenario: string | null;
  /** devflow prompts earlier in the same conversation: a resumed conversation shows them. */
  earlierPromptIds: string[];
  reply: Reply['kind'];
  status: number;
  usage: Usage;
}

export interface PlaybackModelOptions {
  port?: number;
  /** Usage reported for each conversation turn and each side request (known in advance). */
  turnUsage?: Usage;
  sideUsage?: Usage;
}

export interface PlaybackModel {
  url: string;
  port: number;
  requests(): ServedRequest[];
  /** Usage served for a run's conversation turns (what the agents should have logged). */
  servedUsage(runId: string, kind?: ServedRequest['kind']): Usage;
  close(): Promise<void>;
}

export const DEFAULT_TURN_USAGE: Usage = { inputTokens: 1200, outputTokens: 80 };
export const DEFAULT_SIDE_USAGE: Usage = { inputTokens: 300, outputTokens: 12 };
const NO_USAGE: Usage = { inputTokens: 0, outputTokens: 0 };

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export async function startPlaybackModel(options: PlaybackModelOptions = {}): Promise<PlaybackModel> {
  const served: ServedRequest[] = [];
  const errorsServed = new Map<string, number>();
  const sockets = new Set<Socket>();
  const turnUsage = options.turnUsage ?? DEFAULT_TURN_USAGE;
  const sideUsage = options.sideUsage ?? DEFAULT_SIDE_USAGE;

  function answer(api: ModelApi, body: Record<string, unknown>, res: ServerResponse): void {
    const conversation: Conversation = api === 'anthropic' ? fromAnthropic(body) : fromOpenAi(body);
    const prompt = findPrompt(conversation);
    const kind = conversation.tools.length > 0 ? 'turn' : 'side';
    const errorKey = prompt?.promptId ?? '';
    const reply = planReply(conversation, prompt, errorsServed.get(errorKey) ?? 0);
    // An error or a stream that never finishes serves no usage: the agent never sees a total.
    const usage = reply.kind === 'error' || reply.kind === 'hang' ? NO_USAGE : kind === 'turn' ? turnUsage : sideUsage;
    served.push({
      seq: served.length + 1,
      at: new Date().toISOString(),
      api,
      kind,
      runId: prompt?.runId ?? null,
      promptId: prompt?.promptId ?? null,
      promptKind: prompt?.directives.kind ?? null,
      scenario: prompt?.directives.scenario ?? null,
      earlierPromptIds: prompt?.earlierPromptIds ?? [],
      reply: reply.kind,
      status: reply.kind === 'error' ? reply.status : 200,
      usage,
    });
    const model = typeof body.model === 'string' ? body.model : 'devflow-playback';
    if (reply.kind === 'error') {
      errorsServed.set(errorKey, (errorsServed.get(errorKey) ?? 0) + 1);
      if (api === 'anthropic') anthropicError(res, reply.status, reply.type, reply.message);
      else openAiError(res, reply.status, reply.type, reply.message);
      return;
    }
    if (api === 'anthropic') writeAnthropic(res, reply, usage, model, conversation.tools);
    else writeOpenAi(res, reply, usage, model, conversation.tools);
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://playback');
    const route = `${req.method} ${url.pathname}`;
    if (url.pathname === '/api/hello' || route === 'GET /healthz') return json(res, 200, { ok: true });
    if (route === 'GET /_playback/requests') return json(res, 200, { requests: served });
    if (route === 'GET /v1/models') return json(res, 200, { object: 'list', data: [{ id: 'devflow-playback', object: 'model' }] });
    if (req.method !== 'POST') return json(res, 404, { error: { type: 'not_found', message: `no route ${route}` } });
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(req)) as Record<string, unknown>;
    } catch {
      return json(res, 400, { error: { type: 'invalid_request_error', message: 'the body is not JSON' } });
    }
    if (url.pathname === '/v1/messages/count_tokens') return json(res, 200, { input_tokens: sideUsage.inputTokens });
    if (url.pathname === '/v1/messages') return answer('anthropic', body, res);
    if (url.pathname === '/v1/responses') return answer('openai', body, res);
    return json(res, 404, { error: { type: 'not_found', message: `no route ${route}` } });
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, { error: { type: 'api_error', message: String(error) } });
      else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests: () => [...served],
    servedUsage(runId, kind = 'turn') {
      return served
        .filter((r) => r.runId === runId && r.kind === kind)
        .reduce((sum, r) => ({ inputTokens: sum.inputTokens + r.usage.inputTokens, outputTokens: sum.outputTokens + r.usage.outputTokens }), { ...NO_USAGE });
    },
    async close() {
      // Hanging streams never end by themselves.
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
