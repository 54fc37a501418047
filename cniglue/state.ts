// The state files Rancher's agent polls (rancher-compat §3, §8):
// `<dir>/<containerID>/<State.StartedAt>` holding the CNI result, or
// `{"error":"…"}` when networking failed. Written atomically (temp file +
// rename in the same directory), so the agent never reads half a file.
import fs from 'node:fs';
import path from 'node:path';

export const DEFAULT_STATE_DIR = '/var/lib/rancher/state/cni';
/** The prefix network-manager put before ADD errors; the agent shows the whole text. */
export const ERROR_PREFIX = "Couldn't bring up network: ";

function checkPart(what: string, v: string): void {
  if (v === '' || v === '.' || v === '..' || v.includes('/') || v.includes('\0')) {
    throw new Error(`cannot use ${what} ${JSON.stringify(v)} in a state file path`);
  }
}

export function stateFilePath(dir: string, containerId: string, startedAt: string): string {
  checkPart('container ID', containerId);
  checkPart('StartedAt', startedAt);
  return path.join(dir, containerId, startedAt);
}

/** Write `content` as JSON to the container's state file, atomically. */
export function writeStateFile(dir: string, containerId: string, startedAt: string, content: unknown): string {
  const file = stateFilePath(dir, containerId, startedAt);
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = path.join(path.dirname(file), `.${startedAt}.${process.pid}.${Math.random().toString(36).slice(2, 10)}.tmp`);
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
  checkPart('container ID', containerId);
  fs.rmSync(path.join(dir, containerId), { recursive: true, force: true });
}
