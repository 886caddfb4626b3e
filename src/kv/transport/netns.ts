// Two network namespaces joined by a veth pair: "two hosts" on one machine, for the tcp transport's
// tests and benchmark. Created and removed by the caller (`ip netns`, needs root / CAP_NET_ADMIN).
// Addresses exist only inside the namespaces made here (10.231.0.1/24 in A, 10.231.0.2/24 in B), so
// nothing outside them is ever reachable or touched. Names carry the pid and a tag, so concurrent
// users never collide; remove() is idempotent and also runs on process exit.
import { execFileSync } from 'node:child_process';

export const NETNS_ADDR_A = '10.231.0.1';
export const NETNS_ADDR_B = '10.231.0.2';

export interface NetnsPair {
  nsA: string;
  nsB: string;
  addrA: string;
  addrB: string;
  /** argv prefix that runs a command inside a namespace: [...execIn(ns), cmd, ...args] */
  execIn(ns: string): string[];
  /** Takes the link down on both ends (a cut cable). */
  cut(): void;
  /** Brings it back up. */
  restore(): void;
  /** Caps A->B at rateMbit (tc tbf), so a transfer lasts long enough to be cut; false if tc failed. */
  limitRate(rateMbit: number): boolean;
  remove(): void;
}

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 });
}

/** null when namespaces can be made here, else why not (the caller prints one skip line). */
export function netnsUnavailable(): string | null {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  const probe = `pdskv-probe-${process.pid}`;
  try {
    ip(['netns', 'add', probe]);
  } catch (e) {
    return `ip netns not permitted here (${String((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n')[0]})`;
  }
  try {
    ip(['netns', 'del', probe]);
  } catch {
    /* best effort */
  }
  return null;
}

/** Creates the pair (throws, having removed what it made, when a step fails). */
export function createNetnsPair(tag: string): NetnsPair {
  const id = `${process.pid.toString(36)}${tag}`.slice(0, 9);
  const nsA = `pdskv-${id}-a`;
  const nsB = `pdskv-${id}-b`;
  const vA = `pk${id}a`; // interface names: at most 15 characters
  const vB = `pk${id}b`;
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    process.off('exit', remove);
    for (const ns of [nsA, nsB])
      try {
        ip(['netns', 'del', ns]); // deleting a namespace deletes its veth end, and with it the peer end
      } catch {
        /* already gone */
      }
  };
  process.on('exit', remove);
  try {
    ip(['netns', 'add', nsA]);
    ip(['netns', 'add', nsB]);
    ip(['link', 'add', vA, 'netns', nsA, 'type', 'veth', 'peer', 'name', vB, 'netns', nsB]);
    for (const [ns, dev, addr] of [
      [nsA, vA, NETNS_ADDR_A],
      [nsB, vB, NETNS_ADDR_B],
    ] as const) {
      ip(['-n', ns, 'link', 'set', 'lo', 'up']);
      ip(['-n', ns, 'addr', 'add', `${addr}/24`, 'dev', dev]);
      ip(['-n', ns, 'link', 'set', dev, 'up']);
    }
  } catch (e) {
    remove();
    throw e;
  }
  const setLink = (state: 'up' | 'down') => {
    ip(['-n', nsA, 'link', 'set', vA, state]);
    ip(['-n', nsB, 'link', 'set', vB, state]);
  };
  return {
    nsA,
    nsB,
    addrA: NETNS_ADDR_A,
    addrB: NETNS_ADDR_B,
    execIn: (ns) => ['ip', 'netns', 'exec', ns],
    cut: () => setLink('down'),
    limitRate: (rateMbit) => {
      try {
        execFileSync('ip', ['netns', 'exec', nsA, 'tc', 'qdisc', 'replace', 'dev', vA, 'root', 'tbf', 'rate', `${rateMbit}mbit`, 'burst', '256kb', 'latency', '400ms'], {
          stdio: 'ignore',
          timeout: 10_000,
        });
        return true;
      } catch {
        return false;
      }
    },
    restore: () => setLink('up'),
    remove,
  };
}
