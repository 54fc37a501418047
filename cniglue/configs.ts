// Where cniglue finds a network's configurations and its plugins. A network is a
// DIRECTORY `<root>/<network>.d` (default root /etc/docker/cni, Rancher's
// network-manager used /etc/cni): every `.conf`, `.conflist` and `.json` in it
// is run, in file-name order, each as its own network configuration list.
import fs from 'node:fs';
import path from 'node:path';

import { CniError, ERR_INVALID_CONFIG } from '../lib/cni/errors.ts';
import { confFiles, type NetworkList, networkListFromBytes, networkListFromConf, networkListFromFile } from '../lib/runtime/conf.ts';

export const DEFAULT_CONF_ROOT = '/etc/docker/cni';
export const DEFAULT_CNI_PATH: readonly string[] = [
  '/opt/cni/bin', '/var/lib/cni/bin', '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin',
];
export const CONF_EXTENSIONS: readonly string[] = ['.conf', '.conflist', '.json'];

/** `<root>/<network>.d`. */
export function netconfDir(root: string, network: string): string {
  if (network === '' || network.includes('/') || network === '.' || network === '..') {
    throw new CniError(ERR_INVALID_CONFIG, `invalid network name ${JSON.stringify(network)}`);
  }
  return path.join(root, `${network}.d`);
}

/** A `:`-separated plugin path; empty entries dropped. */
export function parseCniPath(text: string): string[] {
  return text.split(':').map((d) => d.trim()).filter((d) => d !== '');
}

/** The configuration files of a network, sorted by file name; none when the directory is missing. */
export function networkConfFiles(root: string, network: string): string[] {
  return confFiles(netconfDir(root, network), CONF_EXTENSIONS);
}

/** Is there at least one configuration file for this network? */
export function hasNetworkConfigs(root: string, network: string): boolean {
  return networkConfFiles(root, network).length > 0;
}

function readJSONObject(file: string): { bytes: Buffer; doc: Record<string, unknown> } {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new CniError(ERR_INVALID_CONFIG, `error reading ${file}`, (e as Error).message);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8').replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new CniError(ERR_INVALID_CONFIG, `error parsing configuration ${file}`, (e as Error).message);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new CniError(ERR_INVALID_CONFIG, `error parsing configuration ${file}`, 'not a JSON object');
  }
  return { bytes, doc: doc as Record<string, unknown> };
}

/**
 * One file as a network configuration list. `.conflist` (and a `.conf`/`.json`
 * that holds a `plugins` list without a `type`) is a list; anything else is a
 * single plugin wrapped as a one-plugin list. A configuration without a name
 * gets the network's name (Rancher's files always have one).
 */
export function loadConfFile(file: string, network: string): NetworkList {
  const { bytes, doc } = readJSONObject(file);
  const isList = file.endsWith('.conflist') || (Array.isArray(doc.plugins) && doc.type === undefined);
  const named = typeof doc.name === 'string' && doc.name !== '';
  if (isList) {
    if (named) return networkListFromFile(file);
    const list = networkListFromBytes(Buffer.from(JSON.stringify({ ...doc, name: network })), file);
    if (list.plugins.length === 0) throw new CniError(ERR_INVALID_CONFIG, `error parsing configuration ${file}`, 'no plugin configs found');
    return list;
  }
  return networkListFromConf(named ? bytes : Buffer.from(JSON.stringify({ ...doc, name: network })), file);
}

/**
 * Every configuration of a network, in file-name order. None at all is an error
 * naming the directory; a broken file is an error naming the file.
 */
export function loadNetworkConfigs(root: string, network: string): NetworkList[] {
  const dir = netconfDir(root, network);
  const files = confFiles(dir, CONF_EXTENSIONS);
  if (files.length === 0) {
    throw new CniError(ERR_INVALID_CONFIG, `couldn't find any CNI network configurations for network "${network}" in ${dir}`,
      `expected ${CONF_EXTENSIONS.map((e) => `*${e}`).join(', ')} files`);
  }
  return files.map((f) => loadConfFile(f, network));
}

/** The networks that have a `<network>.d` directory under the root, sorted; none when the root is missing. */
export function networkNames(root: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new CniError(ERR_INVALID_CONFIG, `cannot read configuration root ${root}`, (e as Error).message);
  }
  return entries
    .filter((e) => e.isDirectory() && e.name.endsWith('.d') && e.name.length > 2)
    .map((e) => e.name.slice(0, -2))
    .filter((n) => n !== '.' && n !== '..')
    .sort();
}
