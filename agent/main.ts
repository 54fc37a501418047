// `cattle-net`: the per-host VXLAN agent (run), its status, and teardown.
import fs from 'node:fs';
import path from 'node:path';

import { ensureRandomHashSeed } from '../lib/hash-seed.ts';
import { lockFile } from '../lib/lock.ts';
import { Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import { type AgentOptions, parseArgs, USAGE, UsageError } from './config.ts';

/** What the executable gives the agent to serve the fast path with: the plugins, run in-process. */
export interface FastPathPlugins {
  programs: ReadonlySet<string>;
  run(program: string, env: Record<string, string>, stdin: Buffer): Promise<{ exit: number; stdout: string; stderr: string }>;
}

export async function main(args: string[], plugins?: FastPathPlugins): Promise<number> {
  // Run as if it were a CNI plugin (a runtime probing every name in the bin dir): never start an agent then.
  if (process.env.CNI_COMMAND !== undefined && args.length === 0) {
    process.stderr.write('cattle-net: this is the per-host VXLAN agent, not a CNI plugin (CNI_COMMAND is set): not starting\n');
    return 1;
  }
  let parsed;
  try {
    parsed = parseArgs(args, process.env);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`cattle-net: ${e.message}\n${USAGE}`);
      return 2;
    }
    throw e;
  }
  try {
    switch (parsed.command) {
      case 'help':
        process.stdout.write(USAGE);
        return 0;
      case 'status':
        return await statusCommand(parsed.options, parsed.json);
      case 'teardown':
        return await teardownCommand(parsed.options, parsed.force);
      default:
        return await runCommand(parsed.options, plugins);
    }
  } catch (e) {
    process.stderr.write(`cattle-net: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

/**
 * The agent's V8 young generation grows (to 2 × 16 MiB here) with the bursts of a large
 * reconcile, whose objects mostly live until the pass ends, and stays committed long after.
 * A fixed young generation (growth factor 1) keeps it at its initial size; what survives is
 * promoted and collected with the old generation: ~15 MiB less RSS after a reconcile of 200
 * hosts × 50 containers, the reconcile not measurably slower. V8 reads the factor at every
 * growth, so setting it here, before the first pass, takes effect (the executable's execArgv
 * does not set it). Only for `run`: the one long-lived command.
 */
function tuneHeapForAgent(): void {
  try {
    process.getBuiltinModule('node:v8').setFlagsFromString('--semi-space-growth-factor=1');
  } catch {
    // an engine without the flag: the default growth
  }
}

async function runCommand(opts: AgentOptions, plugins: FastPathPlugins | undefined): Promise<number> {
  ensureRandomHashSeed();
  tuneHeapForAgent();
  const { Agent, lockHolder, takeLock } = await import('./agent.ts');
  const lock = takeLock(opts.runDir);
  if (!lock) {
    process.stderr.write(`cattle-net: another agent is already running on this host (pid ${lockHolder(opts.runDir)}, lock ${path.join(opts.runDir, 'agent.lock')}); only one may run\n`);
    return 1;
  }
  const agent = new Agent(opts);
  let fastPath: import('../lib/fastpath/server.ts').FastPathServer | undefined;
  const onSignal = (): void => agent.stop();
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    // The fast path first: it serves pods whether or not metadata answers or an overlay exists.
    if (opts.socket !== undefined && plugins) fastPath = await startFastPath(opts.socket, plugins);
    process.stderr.write(`cattle-net: started (pid ${process.pid}, metadata ${opts.metadataAddress}, bridge ${opts.bridge}, vni ${opts.vni}, vtep MTU ${opts.vtepMtu}${opts.socket ? `, socket ${opts.socket}` : ''})\n`);
    await agent.run((line) => process.stdout.write(`${JSON.stringify(line)}\n`));
    process.stderr.write('cattle-net: stopped; the data plane stays in place (cattle-net teardown removes it)\n');
    return 0;
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await fastPath?.close();
    agent.close();
    lock.release();
  }
}

async function startFastPath(socket: string, plugins: FastPathPlugins): Promise<import('../lib/fastpath/server.ts').FastPathServer> {
  const { listenFastPath } = await import('../lib/fastpath/server.ts');
  const { limitLockWaits } = await import('../lib/lock.ts');
  const { readDelegatesAsync } = await import('../lib/spawn.ts');
  // A lock held by a process outside the agent, or a delegate's output, must not stall every other request.
  limitLockWaits(1000);
  readDelegatesAsync();
  return listenFastPath({
    socket,
    programs: plugins.programs,
    handler: plugins.run,
    log: (line) => process.stderr.write(`cattle-net: ${line}\n`),
  });
}

async function statusCommand(opts: AgentOptions, json: boolean): Promise<number> {
  const { formatStatus, readJson, STATUS_FILE, LOCK_FILE } = await import('./status.ts');
  const file = path.join(opts.runDir, STATUS_FILE);
  const status = readJson(file) as import('./status.ts').AgentStatus | undefined;
  const probe = lockFile(path.join(opts.runDir, LOCK_FILE), { wait: false });
  const running = probe === undefined;
  probe?.release();
  if (!status) {
    if (json) process.stdout.write(`${JSON.stringify({ running, status: null })}\n`);
    else process.stdout.write(`cattle-net: ${running ? 'running, no status yet' : 'not running'} (no ${file})\n`);
    return running ? 0 : 3;
  }
  if (json) process.stdout.write(`${JSON.stringify({ running, ...status })}\n`);
  else process.stdout.write(formatStatus(status, running));
  return running ? 0 : 3;
}

async function teardownCommand(opts: AgentOptions, force: boolean): Promise<number> {
  const { lockHolder, takeLock } = await import('./agent.ts');
  const { removeVteps } = await import('./kernel.ts');
  const { removeFilter } = await import('./filter.ts');
  const { APPLIED_FILE, readJson, STATUS_FILE } = await import('./status.ts');
  const { viewFromJson } = await import('./diff.ts');
  const lock = takeLock(opts.runDir);
  if (!lock) {
    process.stderr.write(`cattle-net: the agent is running (pid ${lockHolder(opts.runDir)}): stop it first (SIGTERM), then tear down\n`);
    return 1;
  }
  try {
    // The applied view names the entries of earlier versions (without our mark) as ours.
    const recorded = readJson(path.join(opts.runDir, APPLIED_FILE));
    const vtep = typeof recorded === 'object' && recorded !== null ? (recorded as { vtep?: unknown }).vtep : undefined;
    const records = new Map(typeof vtep === 'string' ? [[vtep, viewFromJson(recorded)]] : []);
    const rt = Rtnetlink.open();
    let removed: string[];
    let kept: string[];
    try {
      ({ removed, kept } = removeVteps(rt, records, force));
    } finally {
      rt.close();
    }
    removed.push(...removeFilter());
    for (const f of [APPLIED_FILE, STATUS_FILE]) {
      const p = path.join(opts.runDir, f);
      if (fs.existsSync(p)) {
        fs.rmSync(p, { force: true });
        removed.push(p);
      }
    }
    if (opts.socket !== undefined) {
      try {
        if (fs.lstatSync(opts.socket).isSocket()) {
          fs.rmSync(opts.socket);
          removed.push(opts.socket);
        }
      } catch {
        // absent
      }
    }
    process.stdout.write(`${JSON.stringify(kept.length ? { removed, kept } : { removed })}\n`);
    return 0;
  } finally {
    lock.release({ remove: true });
  }
}
