// Reading an agent's screen: its menus (which option the cursor is on, and the keys that move it
// to the one a rule wants) and a hash that ignores what changes on its own (spinners, timers).
import { createHash } from 'node:crypto';

/** Lines that start with a selection cursor: Claude Code draws `❯`, Codex `›`. */
const CURSOR = /^\s*[❯›]/;

/**
 * The keys that pick the option matching `wanted` in the menu on screen: arrows from the
 * highlighted option to it, then Enter. Undefined when no such option is shown.
 */
export function menuKeys(screen: string, wanted: RegExp): string[] | undefined {
  const lines = screen.split('\n');
  let target = -1;
  for (let i = lines.length - 1; i >= 0; i--) {
    if (wanted.test(lines[i]!)) {
      target = i;
      break;
    }
  }
  if (target < 0) return undefined;
  let selected = -1;
  for (let distance = 0; distance <= 8 && selected < 0; distance++) {
    for (const i of [target - distance, target + distance]) {
      if (i >= 0 && i < lines.length && CURSOR.test(lines[i]!)) {
        selected = i;
        break;
      }
    }
  }
  if (selected < 0) return undefined;
  const moves = Array<string>(Math.abs(target - selected)).fill(target > selected ? 'Down' : 'Up');
  return [...moves, 'Enter'];
}

/** Blank lines and trailing spaces removed: how a screen is shown to a person in a gate. */
export function tidyScreen(screen: string, maxChars = 3_000): string {
  const text = screen
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0)
    .join('\n');
  return text.length > maxChars ? `…${text.slice(-maxChars)}` : text;
}

/** A hash of the screen without digits and spinner glyphs, so a ticking timer is not "output". */
export function screenHash(screen: string): string {
  const steady = screen.replace(/[0-9]/g, '#').replace(/[✻✢✳✶✽·*◐◓◑◒⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏•◦]/g, '~');
  return createHash('sha256').update(steady).digest('hex').slice(0, 16);
}
