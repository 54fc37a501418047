// The fast-path test parameter: with CATTLE_TEST_FASTPATH=1, every plugin run
// inside a test netns goes through a cattle-net agent started in that netns
// (its metadata unreachable, no filter: only the fast path serves), so a
// plugin suite runs unchanged the other way. Agents are stopped by PID with
// SIGTERM when the file ends, and each must have served requests: a suite
// that silently ran in-process would prove nothing.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const FASTPATH_MODE = process.env.CATTLE_TEST_FASTPATH === '1';
const PLUGINS = new Set(['cattle-bridge', 'rancher-bridge', 'cattle-ptp', 'cattle-ipam', 'rancher-cni-ipam']);

interface RunningAgent {
  pid: number;
  socket: string;
  dir: string;
  log: string;
}

const agents = new Map<string, RunningAgent>();

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/** A started agent's socket path, waiting (synchronously) until it listens. */
export function startAgent(bin: string, netnsName: string, extraArgs: string[] = []): RunningAgent {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-agent-'));
  const socket = path.join(dir, 'agent.sock');
  const log = path.join(dir, 'agent.log');
  const fd = fs.openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', netnsName, path.join(bin, 'cattle-net'), '--socket', socket, '--run-dir', path.join(dir, 'run'),
    '--no-filter', '--metadata-address', '127.0.0.1:9', ...extraArgs], { stdio: ['ignore', fd, fd], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  fs.closeSync(fd);
  const agent = { pid: child.pid!, socket, dir, log };
  child.unref();
  // The event: the agent logs "started" once its socket listens (or exits on a failure).
  const deadline = Date.now() + 60_000;
  while (!fs.readFileSync(log, 'utf8').includes('cattle-net: started')) {
    if (!alive(agent.pid)) throw new Error(`cattle-net in ${netnsName} exited at start: ${fs.readFileSync(log, 'utf8')}`);
    if (Date.now() > deadline) throw new Error(`cattle-net in ${netnsName} did not start: ${fs.readFileSync(log, 'utf8')}`);
    sleepMs(10);
  }
  return agent;
}

/** Extra environment for a plugin run in this netns: the agent's socket in fast-path mode. */
export function fastPathEnv(program: string, netnsName: string | undefined, bin: string): Record<string, string> {
  if (!FASTPATH_MODE || !netnsName || !PLUGINS.has(program)) return {};
  let agent = agents.get(netnsName);
  if (!agent || !alive(agent.pid)) {
    agent = startAgent(bin, netnsName);
    agents.set(netnsName, agent);
  }
  return { CATTLE_CNI_AGENT_SOCKET: agent.socket };
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z /.test(stat);
  } catch {
    return false;
  }
}

/** SIGTERM by PID, wait for the exit; returns the agent's log. */
export function stopAgent(agent: RunningAgent): string {
  try {
    process.kill(agent.pid, 'SIGTERM');
  } catch {
    // already gone
  }
  const deadline = Date.now() + 30_000;
  while (alive(agent.pid) && Date.now() < deadline) sleepMs(10);
  if (alive(agent.pid)) process.kill(agent.pid, 'SIGKILL');
  const log = fs.existsSync(agent.log) ? fs.readFileSync(agent.log, 'utf8') : '';
  fs.rmSync(agent.dir, { recursive: true, force: true });
  return log;
}

/** Stop every agent of this file; throws when one served nothing (the suite did not test the fast path). */
export function stopAllAgents(): void {
  const idle: string[] = [];
  for (const [ns, agent] of agents) {
    const log = stopAgent(agent);
    const served = Number(/fast path: served (\d+) request/.exec(log)?.[1] ?? 0);
    if (served === 0) idle.push(`${ns}: ${log.slice(-2000)}`);
  }
  agents.clear();
  if (idle.length) throw new Error(`fast-path mode: agents that served no request:\n${idle.join('\n')}`);
}
