// A small client for devflow's HTTP API, used by the CLI and the demo.
import { loadConfig } from '../lib/env.ts';

/** CLI exit codes: what a script can branch on. */
export const EXIT = {
  ok: 0,
  runEnded: 1, // the run ended failed or aborted (watch), or an unexpected error
  badInput: 2, // usage errors and 400s
  unreachable: 3, // the API (or what it needs) cannot be reached: connection refused, 503
  notFound: 4,
  conflict: 5, // 409 (already decided) and 429 (too many runs)
  atGate: 10, // watch stopped because the run waits for a decision
} as const;

export class ApiCallError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

function exitCodeFor(status: number): number {
  if (status === 400 || status === 401) return EXIT.badInput;
  if (status === 404) return EXIT.notFound;
  if (status === 409 || status === 429) return EXIT.conflict;
  if (status === 503) return EXIT.unreachable;
  return EXIT.runEnded;
}

export class DevflowApi {
  readonly baseUrl: string;
  private readonly token: string | undefined;

  constructor(options: { baseUrl?: string; token?: string } = {}) {
    const config = loadConfig();
    const host = config.api.host === '0.0.0.0' ? '127.0.0.1' : config.api.host;
    this.baseUrl = (options.baseUrl ?? process.env.DEVFLOW_API_URL ?? `http://${host}:${config.api.port}`).replace(/\/$/, '');
    this.token = options.token ?? config.api.token;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.token ? { authorization: `Bearer ${this.token}` } : {}), ...extra };
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    let response: Response;
    try {
      response = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw new ApiCallError(0, 'unreachable', `cannot reach the devflow API at ${this.baseUrl} (${(error as Error).cause ?? (error as Error).message}); is \`npm start\` running?`, EXIT.unreachable);
    }
    const text = await response.text();
    const parsed = (response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
    if (!response.ok) {
      const error = (parsed as { error?: { code: string; message: string } }).error;
      throw new ApiCallError(response.status, error?.code ?? 'http_error', `${response.status} ${error?.code ?? ''}: ${error?.message ?? text}`, exitCodeFor(response.status));
    }
    return { status: response.status, body: parsed as T };
  }

  get<T>(path: string) {
    return this.request<T>('GET', path).then((r) => r.body);
  }

  post<T>(path: string, body: unknown) {
    return this.request<T>('POST', path, body).then((r) => r.body);
  }
}
