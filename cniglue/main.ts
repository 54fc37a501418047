// `cniglue`: Docker → CNI. As an OCI hook (`prestart`/`poststop`, Rancher's
// cniglue) or as a watcher of Docker events (`watch`, what Rancher's
// network-manager did with cniglue as a library).
import os from 'node:os';

import { ensureRandomHashSeed } from '../lib/hash-seed.ts';
import { parseCniPath } from './configs.ts';
import { defaultSettings, type GlueSettings } from './glue.ts';
import { DEFAULT_STATE_DIR } from './state.ts';

const USAGE = `Usage: cniglue [prestart|poststop|watch] [options]

Modes:
  prestart        OCI hook (also with no argument): OCI state JSON on stdin,
                  DOCKER_HOST_CONFIG = hostconfig.json, DOCKER_CONFIG = config.v2.json;
                  ADD eth0 to /proc/<pid>/ns/net, print the result
  poststop        OCI hook: DEL; best effort, always exits 0
  watch           follow the Docker Engine API: ADD on start, DEL on die/destroy,
                  reconcile running containers and state folders at start-up
                  and after reconnects (DEL what stopped or went meanwhile),
                  write /var/lib/rancher/state/cni/<id>/<StartedAt>
  help            this text

Network of a container: label io.rancher.cni.network, else "managed" for
io.rancher.container.network=true, else its NetworkMode (host, container:*
and none are never networked; empty/default -> "default"). Every *.conf,
*.conflist and *.json in <conf-root>/<network>.d runs, in name order.
Published ports (HostConfig.PortBindings, docker run -p) go as the
portMappings capability to the plugins that declare it (a chained portmap).

Options (environment variable in brackets):
  --conf-root DIR        network directories [CNIGLUE_CONF_ROOT] (/etc/docker/cni;
                         Rancher's network-manager used /etc/cni)
  --cni-path DIRS        plugin directories, ':'-separated [CNIGLUE_CNI_PATH]
                         (/opt/cni/bin:/var/lib/cni/bin:/usr/local/sbin:/usr/sbin:
                         /sbin:/usr/local/bin:/usr/bin:/bin)
  --cache-dir DIR        CNI result cache [CNIGLUE_CACHE_DIR] (/var/lib/cni)
  --plugin-timeout MS    kill a plugin after this long (60000)
watch only:
  --docker-host URL      unix:///path [DOCKER_HOST] (unix:///var/run/docker.sock)
  --state-dir DIR        state files [CNIGLUE_STATE_DIR] (/var/lib/rancher/state/cni)
  --max-parallel N       CNI operations at once, different containers
                         (CPUs, at least 2, at most 8)
  --retries N            retries of a failed ADD (5)
  --retry-interval MS    between retries (2000)
`;

export interface ParsedOptions {
  mode: 'prestart' | 'poststop' | 'watch' | 'help' | '_op';
  glue: GlueSettings;
  dockerHost: string | undefined;
  stateDir: string;
  maxParallel: number;
  retries: number;
  retryIntervalMs: number;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const MODES = new Set(['prestart', 'poststop', 'watch', 'help', '_op']);
const VALUE_OPTIONS = new Set([
  '--conf-root', '--cni-path', '--cache-dir', '--plugin-timeout', '--docker-host', '--state-dir', '--max-parallel', '--retries', '--retry-interval',
]);

function integer(name: string, v: string, min: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${name} needs a whole number >= ${min}, got ${JSON.stringify(v)}`);
  return Number(v);
}

/** Mode and options from the arguments and the environment. */
export function parseOptions(args: string[], env: NodeJS.ProcessEnv): ParsedOptions {
  let mode: ParsedOptions['mode'] | undefined;
  const values = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--help' || a === '-h') {
      mode = 'help';
      continue;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq === -1 ? a : a.slice(0, eq);
      if (!VALUE_OPTIONS.has(name)) throw new UsageError(`unknown option ${name}`);
      let value: string | undefined;
      if (eq !== -1) value = a.slice(eq + 1);
      else value = args[++i];
      if (value === undefined) throw new UsageError(`${name} needs a value`);
      values.set(name, value);
      continue;
    }
    if (mode === undefined && MODES.has(a)) {
      mode = a as ParsedOptions['mode'];
      continue;
    }
    throw new UsageError(`unexpected argument ${JSON.stringify(a)}`);
  }
  const glue = defaultSettings();
  const confRoot = values.get('--conf-root') ?? env.CNIGLUE_CONF_ROOT;
  if (confRoot) glue.confRoot = confRoot;
  const cniPath = values.get('--cni-path') ?? env.CNIGLUE_CNI_PATH;
  if (cniPath !== undefined) {
    glue.cniPath = parseCniPath(cniPath);
    if (glue.cniPath.length === 0) throw new UsageError('--cni-path names no directory');
  }
  const cacheDir = values.get('--cache-dir') ?? env.CNIGLUE_CACHE_DIR;
  if (cacheDir) glue.cacheDir = cacheDir;
  const timeout = values.get('--plugin-timeout');
  if (timeout !== undefined) glue.pluginTimeoutMs = integer('--plugin-timeout', timeout, 1);
  const maxParallel = values.get('--max-parallel');
  const retries = values.get('--retries');
  const interval = values.get('--retry-interval');
  return {
    mode: mode ?? 'prestart',
    glue,
    dockerHost: values.get('--docker-host') ?? env.DOCKER_HOST,
    stateDir: values.get('--state-dir') ?? env.CNIGLUE_STATE_DIR ?? DEFAULT_STATE_DIR,
    maxParallel: maxParallel !== undefined ? integer('--max-parallel', maxParallel, 1) : Math.min(8, Math.max(2, os.availableParallelism())),
    retries: retries !== undefined ? integer('--retries', retries, 0) : 5,
    retryIntervalMs: interval !== undefined ? integer('--retry-interval', interval, 1) : 2000,
  };
}

async function watch(o: ParsedOptions): Promise<number> {
  ensureRandomHashSeed();
  const { DockerClient } = await import('./docker.ts');
  const { childRunner } = await import('./worker.ts');
  const { Watcher } = await import('./watch.ts');
  const docker = new DockerClient(o.dockerHost);
  // A worker gets time for a few plugin runs (each bounded by the plugin timeout).
  const runner = childRunner(o.glue, o.maxParallel, o.glue.pluginTimeoutMs * 3 + 5000);
  const watcher = new Watcher({
    docker,
    runner,
    glue: o.glue,
    stateDir: o.stateDir,
    retries: o.retries,
    retryIntervalMs: o.retryIntervalMs,
    backoffMinMs: 250,
    backoffMaxMs: 5000,
    log: (line) => process.stderr.write(`cniglue: ${line}\n`),
  });
  let stopping: Promise<void> | undefined;
  const stop = (signal: string) => {
    if (stopping) return;
    process.stderr.write(`cniglue: ${new Date().toISOString()} stopping signal=${signal}\n`);
    stopping = watcher.stop();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  await watcher.run();
  await stopping;
  return 0;
}

export async function main(args: string[]): Promise<number> {
  let o: ParsedOptions;
  try {
    o = parseOptions(args, process.env);
  } catch (e) {
    process.stderr.write(`cniglue: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  switch (o.mode) {
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    case '_op': {
      const { opMain } = await import('./worker.ts');
      return opMain();
    }
    case 'watch':
      return watch(o);
    case 'prestart':
    case 'poststop': {
      if (o.mode === 'prestart' && args.length === 0 && process.stdin.isTTY) {
        // Run by hand without input: say how to use it rather than wait for stdin.
        process.stderr.write(USAGE);
        return 2;
      }
      const { runHook } = await import('./hook.ts');
      return runHook(o.mode, o.glue);
    }
  }
}
