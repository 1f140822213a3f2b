// Secrets near agents: devflow's own (the API token, the webhook secret, the database URL with
// its password) must never reach an agent, whose screen devflow records; an agent's own key
// reaches that agent alone; and whatever of a key an agent shows on screen (Claude Code prints
// the end of a key it finds) is blanked before devflow keeps the screen.
import { PRESETS } from './presets.ts';

/** devflow's own secrets: no agent needs them. */
const DEVFLOW_SECRETS = ['DEVFLOW_API_TOKEN', 'DEVFLOW_WEBHOOK_SECRET', 'DATABASE_URL'];
const SECRET_NAME = /(KEY|TOKEN|SECRET|PASSWORD)$/;
/** Every agent's key or token variable: each agent is given its own by its preset, never another's. */
const AGENT_SECRETS = [...new Set(Object.values(PRESETS).flatMap((preset) => preset.passEnv.filter((name) => SECRET_NAME.test(name))))];

/** The environment devflow's tmux server, and so every agent in it, starts from: without any of those secrets. */
export function agentEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const clean = { ...env };
  for (const name of [...DEVFLOW_SECRETS, ...AGENT_SECRETS]) delete clean[name];
  return clean;
}

/** Shorter values are not taken for secrets (nor blanked where they happen to appear). */
const MIN_SECRET = 12;

/** The values, set in `env`, of devflow's secrets and of every agent's key. */
export function knownSecrets(env: NodeJS.ProcessEnv = process.env): string[] {
  return [...DEVFLOW_SECRETS, ...AGENT_SECRETS].filter((name) => SECRET_NAME.test(name)).map((name) => env[name] ?? '').filter((value) => value.length >= MIN_SECRET);
}

/**
 * `text` with every secret, and every piece of one at least MIN_SECRET characters long (what a
 * masked display leaves of it), replaced by `[redacted]`.
 */
export function redactSecrets(text: string, secrets: readonly string[]): string {
  if (secrets.length === 0 || text.length < MIN_SECRET) return text;
  const pieces = new Set(secrets.flatMap((secret) => Array.from({ length: secret.length - MIN_SECRET + 1 }, (_, i) => secret.slice(i, i + MIN_SECRET))));
  const covered = new Uint8Array(text.length);
  let found = false;
  for (let i = 0; i + MIN_SECRET <= text.length; i += 1) {
    if (!pieces.has(text.slice(i, i + MIN_SECRET))) continue;
    covered.fill(1, i, i + MIN_SECRET);
    found = true;
  }
  if (!found) return text;
  let out = '';
  for (let i = 0; i < text.length; i += 1) {
    if (!covered[i]) out += text[i];
    else if (i === 0 || !covered[i - 1]) out += '[redacted]';
  }
  return out;
}
