// The watcher runs each CNI operation in a child process (this executable again,
// as `cniglue _op`): the runtime library is synchronous, and a plugin that takes
// its time must not stall the Docker event stream or the other containers.
// The job goes in on stdin as JSON, the outcome comes back on stdout as JSON;
// plugin logs pass through on stderr.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { isSea } from 'node:sea';

import { type Attachment, glueAdd, glueDel, type GlueSettings } from './glue.ts';
import { asPortMappings } from './ports.ts';

export type OpKind = 'add' | 'del';

export interface OpJob {
  op: OpKind;
  attachment: Attachment;
  settings: GlueSettings;
}

export type OpOutcome = { ok: true; result?: Record<string, unknown> } | { ok: false; error: string };

export type OpRunner = (op: OpKind, attachment: Attachment) => Promise<OpOutcome>;

/** How to start this program again as `cniglue`: the executable, or node + main.ts from source. */
export function selfCommand(): { file: string; args: string[]; argv0?: string } {
  if (isSea()) return { file: process.execPath, args: [], argv0: 'cniglue' };
  const script = process.argv[1];
  if (!script) throw new Error('cannot tell how this program was started (no script in argv)');
  return { file: process.execPath, args: [...process.execArgv, script, 'cniglue'] };
}

/** Run one job in-process (the child's side; also usable directly). */
export function runJob(job: OpJob): OpOutcome {
  try {
    if (job.op === 'add') return { ok: true, result: glueAdd(job.attachment, job.settings) };
    glueDel(job.attachment, job.settings);
    return { ok: true };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

function isJob(v: unknown): v is OpJob {
  if (typeof v !== 'object' || v === null) return false;
  const j = v as Partial<OpJob>;
  const a = j.attachment;
  const s = j.settings;
  return (j.op === 'add' || j.op === 'del')
    && typeof a === 'object' && a !== null && typeof a.network === 'string' && typeof a.containerId === 'string'
    && typeof a.netns === 'string' && Array.isArray(a.args)
    && (a.portMappings === undefined || asPortMappings(a.portMappings) !== undefined)
    && typeof s === 'object' && s !== null && typeof s.confRoot === 'string' && Array.isArray(s.cniPath)
    && typeof s.cacheDir === 'string' && typeof s.pluginTimeoutMs === 'number';
}

/** `cniglue _op`: one job from stdin, its outcome on stdout. */
export function opMain(): number {
  let job: unknown;
  try {
    job = JSON.parse(fs.readFileSync(0, 'utf8'));
  } catch (e) {
    process.stderr.write(`cniglue _op: cannot read the job on stdin: ${(e as Error).message}\n`);
    return 2;
  }
  if (!isJob(job)) {
    process.stderr.write('cniglue _op: malformed job\n');
    return 2;
  }
  process.stdout.write(`${JSON.stringify(runJob(job))}\n`);
  return 0;
}

/** A runner that starts a child per job, at most `maxParallel` at a time, each killed after `deadlineMs`. */
export function childRunner(settings: GlueSettings, maxParallel: number, deadlineMs: number): OpRunner {
  const cmd = selfCommand();
  let running = 0;
  const waiting: (() => void)[] = [];
  const acquire = async (): Promise<void> => {
    if (running < maxParallel) {
      running++;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  const runOnce = (job: OpJob): Promise<OpOutcome> => new Promise((resolve) => {
    const child = spawn(cmd.file, [...cmd.args, '_op'], {
      ...(cmd.argv0 ? { argv0: cmd.argv0 } : {}),
      stdio: ['pipe', 'pipe', 'inherit'],
      env: process.env,
    });
    const pid = child.pid;
    let out = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      if (pid !== undefined) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, deadlineMs);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
    });
    child.stdin.on('error', () => {}); // a child that died early: its exit status tells
    child.stdin.end(JSON.stringify(job));
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, error: `cannot start ${cmd.file}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        resolve({ ok: false, error: `${job.op.toUpperCase()} did not finish within ${deadlineMs} ms` });
        return;
      }
      const line = out.trim().split('\n').at(-1) ?? '';
      try {
        const parsed = JSON.parse(line) as OpOutcome;
        if (typeof parsed === 'object' && parsed !== null && typeof parsed.ok === 'boolean') {
          resolve(parsed);
          return;
        }
      } catch {
        // fall through
      }
      resolve({ ok: false, error: `worker ended (${signal ? `signal ${signal}` : `exit ${code}`}) without an answer` });
    });
  });
  return async (op: OpKind, attachment: Attachment): Promise<OpOutcome> => {
    await acquire();
    try {
      return await runOnce({ op, attachment, settings });
    } finally {
      release();
    }
  };
}
