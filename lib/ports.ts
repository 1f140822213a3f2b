// Ports for servers devflow's tests, benchmarks and chaos start as separate processes, picked
// before they listen. A port the OS hands out for `listen(0)` comes from the ephemeral range,
// the same range every outgoing connection (and the Temporal dev server's own extra listeners)
// takes its source port from: between the pick and the child's listen, one of those can take it.
// So ports are picked below that range, at random, and checked free by listening on each.
import { readFileSync } from 'node:fs';
import net from 'node:net';

function ephemeralRangeStart(): number {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 32_768;
  } catch {
    return 32_768;
  }
}

function hold(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
}

/** `count` different ports free right now, below the ephemeral range (or from the OS when that range starts too low). */
export async function freePorts(count: number): Promise<number[]> {
  const top = ephemeralRangeStart() - 1;
  const bottom = Math.max(1_024, top - 12_000);
  const held: net.Server[] = [];
  try {
    for (let tries = 0; held.length < count && tries < count * 50; tries += 1) {
      const port = top - bottom > 1_000 ? bottom + Math.floor(Math.random() * (top - bottom)) : 0;
      const server = await hold(port);
      if (server) held.push(server);
    }
    if (held.length < count) throw new Error(`found only ${held.length} of ${count} free ports on 127.0.0.1`);
    return held.map((s) => (s.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((s) => new Promise((resolve) => s.close(resolve))));
  }
}

export async function freePort(): Promise<number> {
  return (await freePorts(1))[0]!;
}
