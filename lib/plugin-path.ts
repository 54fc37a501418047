// libcni's plugin lookup, shared by the runtime and IPAM delegation; and the
// lookup of the system tools we execute (nft, iptables).
import fs from 'node:fs';
import path from 'node:path';

import { CniError, ERR_INVALID_CONFIG } from './cni/errors.ts';

/** The first regular file `<dir>/<type>` along the plugin path (symlinks followed, as os.Stat does). */
export function findInPath(type: string, dirs: readonly string[]): string {
  if (type === '') throw new CniError(ERR_INVALID_CONFIG, 'no plugin name provided');
  if (type.includes('/')) throw new CniError(ERR_INVALID_CONFIG, `invalid plugin name: ${type}`);
  if (dirs.length === 0) throw new CniError(ERR_INVALID_CONFIG, `no paths provided to find plugin "${type}"`);
  for (const dir of dirs) {
    const candidate = path.join(dir, type);
    try {
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // missing or unreadable: try the next directory
    }
  }
  throw new CniError(ERR_INVALID_CONFIG, `failed to find plugin "${type}" in path [${dirs.join(' ')}]`);
}

/** An executable system tool along PATH, then the usual sbin/bin directories; undefined when none is there. */
export function findTool(name: string): string | undefined {
  for (const d of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    if (!d) continue;
    const f = path.join(d, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // keep looking
    }
  }
  return undefined;
}
