// Small per-attachment state files under /run (tmpfs: gone after a reboot,
// like the namespaces they describe). Written atomically.
import { hashHex } from './hash.ts';
import fs from 'node:fs';
import path from 'node:path';

export const STATE_DIR = process.env.CATTLE_CNI_STATE_DIR ?? '/run/cattle-cni/state';

function stateFile(plugin: string, network: string, containerId: string, ifname: string): string {
  const key = hashHex(`${network}\0${containerId}\0${ifname}`, 32);
  return path.join(STATE_DIR, plugin, `${key}.json`);
}

export function saveState(plugin: string, network: string, containerId: string, ifname: string, record: unknown): void {
  const file = stateFile(plugin, network, containerId, ifname);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(record), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

export function loadState<T>(plugin: string, network: string, containerId: string, ifname: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(stateFile(plugin, network, containerId, ifname), 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function removeState(plugin: string, network: string, containerId: string, ifname: string): void {
  fs.rmSync(stateFile(plugin, network, containerId, ifname), { force: true });
}
