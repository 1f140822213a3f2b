// devflow's scripted agent: runs in a tmux pane like an agent TUI. It turns on bracketed paste,
// reads a pasted prompt in raw mode and submits it on Enter, keeps every prompt it received
// (verbatim, under .devflow/scripted-agent/<role>/ in its working folder), and acts out the prompt's
// `Scenario:` (or, for a repair prompt, the previous prompt's `Repair-Scenario:`).
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { writeScenarioArtifact } from './artifact-writer.ts';
import { parsePromptDirectives, type Scenario } from './scenarios.ts';

const PASTE_START = '\x1b[200~';
const PASTE_END = '\x1b[201~';
const promptsDir = path.join(process.cwd(), '.devflow', 'scripted-agent');

let silent = false;
let ticker: NodeJS.Timeout | undefined;
let pendingRepair: Scenario | undefined;
const handled = new Set<string>();

function say(line: string): void {
  if (!silent) process.stdout.write(`${line}\r\n`);
}

/** Prompts are kept by role, as roles of one run share a worktree. */
function keepPrompt(text: string): string {
  const role = /^Role: *([A-Za-z0-9_-]+)$/m.exec(text)?.[1] ?? 'unknown-role';
  const folder = path.join(promptsDir, role);
  mkdirSync(folder, { recursive: true });
  const n = readdirSync(folder).filter((f) => f.startsWith('prompt-')).length + 1;
  const file = path.join(folder, `prompt-${String(n).padStart(3, '0')}.txt`);
  writeFileSync(file, text);
  return file;
}

async function onPrompt(text: string): Promise<void> {
  const kept = keepPrompt(text);
  const directives = parsePromptDirectives(text);
  clearInterval(ticker);
  if (directives.dedupKey && handled.has(directives.dedupKey)) {
    say(`duplicate prompt ${directives.dedupKey.slice(0, 12)} ignored`);
    return;
  }
  if (directives.dedupKey) handled.add(directives.dedupKey);
  const scenario = (directives.kind === 'repair' ? pendingRepair : undefined) ?? directives.scenario ?? 'ok';
  pendingRepair = directives.repairScenario;
  // Its first line, as an agent's screen shows what it was given.
  say(text.split('\n')[0]!);
  say(`received ${directives.kind} prompt (${Buffer.byteLength(text)} bytes, kept in ${path.basename(kept)}); scenario ${scenario}`);

  switch (scenario) {
    case 'flood':
      await flood();
      break;
    case 'crash':
      say('crashing (scenario crash)');
      process.exit(3);
      break;
    case 'hang':
      silent = true; // prints nothing from now on
      return;
    case 'timeout': {
      const started = Date.now();
      ticker = setInterval(() => say(`working... ${((Date.now() - started) / 1000).toFixed(1)} s`), 250);
      return;
    }
  }
  if (!directives.artifactPath || !directives.schemaId) {
    say('the prompt names no Artifact-Path/Artifact-Schema; nothing to write');
    return;
  }
  say(`thinking about ${directives.schemaId}...`);
  if (await writeScenarioArtifact(scenario, directives.artifactPath, directives.schemaId, { chunkDelayMs: 150, jsonSchema: directives.jsonSchema })) {
    say(`wrote ${directives.artifactPath}`);
  }
}

/** The `flood` scenario: an agent that prints far more than anyone should keep (27 MB, in lines ten 220-column rows long). */
async function flood(): Promise<void> {
  const lines = 12 * 1024;
  for (let i = 1; i <= lines; i++) {
    const start = `flood line ${i} of ${lines} `;
    if (!process.stdout.write(`${start}${'x'.repeat(2_200 - start.length)}\r\n`)) await new Promise((resolve) => process.stdout.once('drain', resolve));
  }
  say(`flooded ${lines} lines`);
}

// ---- terminal input: bracketed paste, then Enter ----------------------------------------------
let input = '';
let pasted: string | undefined;
let inPaste = false;
const decoder = new StringDecoder('utf8');

function onInput(chunk: string): void {
  input += chunk;
  for (;;) {
    if (inPaste) {
      const end = input.indexOf(PASTE_END);
      if (end < 0) return;
      pasted = (pasted ?? '') + input.slice(0, end);
      input = input.slice(end + PASTE_END.length);
      inPaste = false;
      continue;
    }
    const start = input.indexOf(PASTE_START);
    const enter = input.indexOf('\r');
    if (start >= 0 && (enter < 0 || start < enter)) {
      pasted = (pasted ?? '') + input.slice(0, start); // typed before the paste
      input = input.slice(start + PASTE_START.length);
      inPaste = true;
      continue;
    }
    if (enter < 0) return;
    if (input.slice(0, enter) === '\x03') process.exit(130); // Ctrl-C typed
    const text = (pasted ?? '') + input.slice(0, enter);
    input = input.slice(enter + 1);
    pasted = undefined;
    if (text.length > 0) void onPrompt(text);
  }
}

// Stop at once when devflow disposes of the session (a loader may otherwise hold SIGTERM).
process.on('SIGTERM', () => process.exit(143));
process.on('SIGHUP', () => process.exit(129));
process.stdout.write('\x1b[?2004h'); // ask the terminal for bracketed paste
say('devflow scripted agent ready');
if (process.stdin.isTTY) process.stdin.setRawMode(true);
process.stdin.on('data', (chunk: Buffer) => onInput(decoder.write(chunk)));
process.stdin.on('end', () => process.exit(0));
