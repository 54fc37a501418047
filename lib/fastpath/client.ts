// The fast path's client: the first thing a plugin executable does (after
// answering VERSION) is to look for the per-host agent's socket. When an agent
// is there it runs the request, warm, and this process only prints its answer.
// No socket, or nobody listening: undefined at once, and the executable does
// the work itself. The exchange is synchronous (a blocking socket from the
// addon): no event loop, no node:net.
import fs from 'node:fs';

import { CniError, ERR_TRY_AGAIN_LATER, errorJSON } from '../cni/errors.ts';
import { CURRENT_VERSION } from '../cni/versions.ts';
import { native } from '../native.ts';
import { fdIsTTY, processStdin, writeFdFully } from '../stdio.ts';
import {
  type AgentLine, DEFAULT_AGENT_SOCKET, DEFAULT_SILENCE_MS, FORWARDED_COMMANDS, type ForwardRequest,
  PROCESS_SETTINGS, PROTOCOL_VERSION, SILENCE_ENV, SOCKET_ENV,
} from './protocol.ts';

type Env = Record<string, string | undefined>;

/**
 * Hand this invocation to the agent. Returns the exit status once the agent's
 * answer is printed, or undefined when the executable must run it itself (no
 * agent, or the agent declined before running anything).
 */
export function forwardToAgent(program: string, env: Env = process.env): number | undefined {
  if (!FORWARDED_COMMANDS.has(env.CNI_COMMAND ?? '')) return undefined;
  const socketPath = env[SOCKET_ENV] || DEFAULT_AGENT_SOCKET;
  if (socketPath === 'none' || !isSocket(socketPath)) return undefined;
  if (fdIsTTY(0)) return undefined; // run by hand: the harness explains itself
  const silenceMs = silenceBound(env);
  let fd: number;
  try {
    fd = native().unixConnect(socketPath, silenceMs);
  } catch {
    return undefined; // refused, gone, not ours to use: nobody is serving
  }
  try {
    return exchange(fd, program, env, silenceMs);
  } finally {
    fs.closeSync(fd);
  }
}

function isSocket(file: string): boolean {
  try {
    return fs.statSync(file).isSocket();
  } catch {
    return false;
  }
}

function silenceBound(env: Env): number {
  const n = Number(env[SILENCE_ENV]);
  return Number.isInteger(n) && n > 0 ? n : DEFAULT_SILENCE_MS;
}

function exchange(fd: number, program: string, env: Env, silenceMs: number): number | undefined {
  const stdin = processStdin();
  const request: ForwardRequest = {
    v: PROTOCOL_VERSION,
    program,
    netns: fs.readlinkSync('/proc/self/ns/net'),
    exe: exeIdentity(),
    env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    stdin: stdin.toString('base64'),
    // The agent starts nothing after this: by then this client has given up (code 11).
    notAfter: Date.now() + silenceMs,
  };
  let accepted = false;
  try {
    writeFdFully(fd, `${JSON.stringify(request)}\n`);
    for (const line of lines(fd)) {
      if ('accepted' in line) accepted = true;
      else if ('done' in line) {
        if (line.stderr) writeFdFully(2, line.stderr);
        if (line.stdout) writeFdFully(1, line.stdout);
        return line.exit;
      } else if ('declined' in line || 'error' in line) return undefined;
    }
    // The agent closed the connection. Before accepting, nothing ran: do it here.
    if (!accepted) return undefined;
    return fail(stdin, 'the cattle-net agent closed the connection while running the request (killed or restarted?)',
      'nothing is left that DEL cannot remove; retry the request');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
      return fail(stdin, `the cattle-net agent ${accepted ? 'accepted the request but ' : ''}said nothing for ${silenceMs} ms`,
        'it was not run here a second time; retry the request');
    }
    if (!accepted && (code === 'EPIPE' || code === 'ECONNRESET')) return undefined;
    return fail(stdin, 'the cattle-net agent connection failed', e instanceof Error ? e.message : String(e));
  }
}

/** The lines the agent sends, parsed; ends at EOF. Throws EAGAIN when it is silent too long. */
function* lines(fd: number): Generator<AgentLine> {
  const buf = Buffer.allocUnsafe(64 * 1024);
  let pending = Buffer.alloc(0);
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) return;
    pending = Buffer.concat([pending, buf.subarray(0, n)]);
    for (let nl = pending.indexOf(10); nl >= 0; nl = pending.indexOf(10)) {
      const text = pending.subarray(0, nl).toString('utf8');
      pending = pending.subarray(nl + 1);
      yield JSON.parse(text) as AgentLine;
    }
  }
}

/** The executable's identity: a caller running another build than the agent's must run its own code. */
export function exeIdentity(file = process.execPath): string {
  const st = fs.statSync(file);
  return `${st.dev}:${st.ino}:${Math.trunc(st.mtimeMs)}`;
}

/** The process-wide settings the agent must share with a caller (see PROCESS_SETTINGS). */
export function processSettings(env: Env): Record<string, string> {
  return Object.fromEntries(PROCESS_SETTINGS.map((k) => [k, env[k] ?? '']));
}

function fail(stdin: Buffer, msg: string, details: string): number {
  writeFdFully(1, `${JSON.stringify(errorJSON(new CniError(ERR_TRY_AGAIN_LATER, msg, details), requestVersion(stdin)))}\n`);
  return 1;
}

function requestVersion(stdin: Buffer): string {
  try {
    const v = (JSON.parse(stdin.toString('utf8')) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && v !== '' ? v : CURRENT_VERSION;
  } catch {
    return CURRENT_VERSION;
  }
}
