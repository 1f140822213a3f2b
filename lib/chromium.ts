// Debian's Chromium, for the browser tests and the screenshots (the browser downloads of test
// tools fail on these machines). Found at CHROMIUM_PATH or /usr/bin/chromium; as root with apt,
// installed when missing.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Flags for a headless Chromium on a closed network, as root. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function ensureChromium(log: (line: string) => void = () => undefined): string {
  const wanted = process.env.CHROMIUM_PATH?.trim() || '/usr/bin/chromium';
  if (existsSync(wanted)) return wanted;
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    log('Chromium is missing: installing Debian\'s chromium with apt-get (once per machine)');
    const apt = (...args: string[]) => execFileSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    apt('update', '-qq');
    apt('install', '-y', '-qq', 'chromium');
    if (existsSync(wanted)) return wanted;
  }
  throw new Error(`no Chromium at ${wanted}: install it (apt-get install -y chromium) or set CHROMIUM_PATH`);
}
