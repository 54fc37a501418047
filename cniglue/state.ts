// The state files Rancher's agent polls (README: Docker (cniglue)):
// `<dir>/<containerID>/<State.StartedAt>` holding the CNI result, or
// `{"error":"…"}` when networking failed. Written atomically (temp file +
// rename in the same directory), so the agent never reads half a file.
// Next to them the watcher keeps its own record of the attachment (network,
// CNI_ARGS, published ports): a watcher that restarts knows nothing else, and DEL needs them all.
import fs from 'node:fs';
import path from 'node:path';

import { asPortMappings, type PortMapping } from './ports.ts';

export const DEFAULT_STATE_DIR = '/var/lib/rancher/state/cni';
/** The prefix network-manager put before ADD errors; the agent shows the whole text. */
export const ERROR_PREFIX = "Couldn't bring up network: ";
/** Starts with '.', which no StartedAt does: the agent and stateFileStarts never take it for a state file. */
export const RECORD_FILE = '.cniglue-attachment.json';
/**
 * The folder names the watcher looks at: full Docker IDs only (Docker would
 * also answer for a container *name* or an ID prefix).
 */
const CONTAINER_ID_RE = /^[0-9a-f]{64}$/;

/** What DEL needs for a container's attachment, and which start it was made for. */
export interface AttachmentRecord {
  startedAt: string;
  network: string;
  args: [string, string][];
  /** The published ports the ADD was given (portmap's DEL needs the same); only when there are any. */
  portMappings?: PortMapping[];
}

function checkPart(what: string, v: string): void {
  if (v === '' || v === '.' || v === '..' || v.includes('/') || v.includes('\0')) {
    throw new Error(`cannot use ${what} ${JSON.stringify(v)} in a state file path`);
  }
}

function containerDir(dir: string, containerId: string): string {
  checkPart('container ID', containerId);
  return path.join(dir, containerId);
}

export function stateFilePath(dir: string, containerId: string, startedAt: string): string {
  const folder = containerDir(dir, containerId);
  checkPart('StartedAt', startedAt);
  return path.join(folder, startedAt);
}

/** Write `content` as JSON to `file`, atomically, creating its directory. */
function writeJSONAtomically(file: string, content: unknown): string {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
  const fd = fs.openSync(tmp, 'wx', 0o644);
  try {
    fs.writeSync(fd, `${JSON.stringify(content)}\n`);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  return file;
}

/** Write `content` as JSON to the container's state file, atomically. */
export function writeStateFile(dir: string, containerId: string, startedAt: string, content: unknown): string {
  return writeJSONAtomically(stateFilePath(dir, containerId, startedAt), content);
}

/** A state file's content, or undefined when it is missing or not JSON. */
export function readStateFile(dir: string, containerId: string, startedAt: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(stateFilePath(dir, containerId, startedAt), 'utf8'));
  } catch {
    return undefined;
  }
}

/** The starts a container has state files for, oldest first (StartedAt is an ISO time). */
export function stateFileStarts(dir: string, containerId: string): string[] {
  try {
    return fs.readdirSync(containerDir(dir, containerId)).filter((n) => !n.startsWith('.')).sort();
  } catch {
    return [];
  }
}

export function errorState(message: string): { error: string } {
  return { error: `${ERROR_PREFIX}${message}` };
}

/** Remove one start's state file (missing is fine). */
export function removeStateFile(dir: string, containerId: string, startedAt: string): void {
  fs.rmSync(stateFilePath(dir, containerId, startedAt), { force: true });
  // The container's directory goes when it is empty.
  try {
    fs.rmdirSync(path.join(dir, containerId));
  } catch {
    // not empty or already gone
  }
}

/** Remove every state file of a container (it was removed from Docker). */
export function removeContainerState(dir: string, containerId: string): void {
  fs.rmSync(containerDir(dir, containerId), { recursive: true, force: true });
}

/** The containers that have a folder in the state directory (none when it does not exist yet). */
export function containerDirs(dir: string): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return entries.filter((e) => e.isDirectory() && CONTAINER_ID_RE.test(e.name)).map((e) => e.name).sort();
}

export function writeAttachmentRecord(dir: string, containerId: string, record: AttachmentRecord): string {
  return writeJSONAtomically(path.join(containerDir(dir, containerId), RECORD_FILE), record);
}

function isArgs(v: unknown): v is [string, string][] {
  return Array.isArray(v) && v.every((p) => Array.isArray(p) && p.length === 2 && p.every((s) => typeof s === 'string'));
}

/** The container's attachment record, or undefined when there is none (or it is unreadable). */
export function readAttachmentRecord(dir: string, containerId: string): AttachmentRecord | undefined {
  let doc: Partial<AttachmentRecord>;
  try {
    doc = JSON.parse(fs.readFileSync(path.join(containerDir(dir, containerId), RECORD_FILE), 'utf8')) as Partial<AttachmentRecord>;
  } catch {
    return undefined;
  }
  if (typeof doc !== 'object' || doc === null) return undefined;
  const { startedAt, network, args } = doc;
  if (typeof startedAt !== 'string' || typeof network !== 'string' || network === '' || !isArgs(args)) return undefined;
  if (doc.portMappings === undefined) return { startedAt, network, args };
  const portMappings = asPortMappings(doc.portMappings);
  if (!portMappings) return undefined;
  return { startedAt, network, args, ...(portMappings.length > 0 ? { portMappings } : {}) };
}

/** Remove the container's attachment record (missing is fine); the folder stays for removeStateFile. */
export function removeAttachmentRecord(dir: string, containerId: string): void {
  fs.rmSync(path.join(containerDir(dir, containerId), RECORD_FILE), { force: true });
}
