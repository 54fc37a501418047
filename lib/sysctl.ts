// sysctl through /proc/sys. /proc/sys/net follows the calling thread's netns,
// so inside withNetnsSync these act on the container.
import fs from 'node:fs';

import { type Netns, withNetnsSync } from './netns.ts';

/** "net.ipv4.ip_forward" or "net/ipv4/conf/eth0.100/forwarding" → /proc/sys path. */
export function sysctlPath(key: string): string {
  return `/proc/sys/${key.includes('/') ? key : key.replace(/\./g, '/')}`;
}

/** Key for a per-interface setting; interface names may contain dots. */
export function interfaceKey(family: 4 | 6, ifname: string, setting: string): string {
  return `net/${family === 4 ? 'ipv4' : 'ipv6'}/conf/${ifname}/${setting}`;
}

export function sysctlGet(key: string): string {
  return fs.readFileSync(sysctlPath(key), 'utf8').trim();
}

/** Write only when different, so a read-only /proc/sys with the right value is fine. */
export function sysctlSet(key: string, value: string): void {
  if (sysctlGet(key) === value) return;
  fs.writeFileSync(sysctlPath(key), value);
}

export function sysctlSetIn(ns: Netns, settings: [key: string, value: string][]): void {
  withNetnsSync(ns, () => {
    for (const [k, v] of settings) sysctlSet(k, v);
  });
}

export function sysctlGetIn(ns: Netns, key: string): string {
  return withNetnsSync(ns, () => sysctlGet(key));
}
