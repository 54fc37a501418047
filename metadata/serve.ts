// `cattle-metadata serve`: load the answers (a bad file refuses to start), listen,
// reload on SIGHUP / POST /v1/reload / file change, stop on SIGTERM or SIGINT.
import { environmentAnswers } from './environment.ts';
import { createMetadataHandler, createReloadHandler, listen, parseListen, type RunningServer } from './server.ts';
import { AnswersStore, type ReloadResult } from './store.ts';

export interface ServeOptions {
  /** A classic answers file… */
  answers?: string;
  /** …or an environment description, answered as `selfHost` (uuid or name). */
  environment?: string;
  selfHost?: string;
  listen: string;
  /** undefined: no reload listener. */
  reloadListen?: string;
  xff: boolean;
}

function log(line: string): void {
  process.stderr.write(`cattle-metadata: ${line}\n`);
}

/** Runs until SIGTERM/SIGINT; resolves to the exit code. */
export async function serve(opts: ServeOptions): Promise<number> {
  const main = parseListen(opts.listen);
  const reloadAt = opts.reloadListen !== undefined ? parseListen(opts.reloadListen) : undefined;
  const file = (opts.environment ?? opts.answers)!;
  const store = opts.environment !== undefined
    ? new AnswersStore(file, undefined, (text, f) => environmentAnswers(text, f, opts.selfHost))
    : new AnswersStore(file);
  const first = await store.reload();
  if (!first.ok) {
    log(`cannot start without valid answers: ${first.error}`);
    return 1;
  }
  const problems = (r: ReloadResult): void => {
    if (r.ok) for (const w of r.warnings) log(`  ${file}: ${w}`);
  };
  if (first.ok && first.warnings.length) log(`${file}: ${first.warnings.length} problem(s):`);
  problems(first);

  const report = (why: string) => (r: ReloadResult): ReloadResult => {
    if (r.ok) log(`${why}: reloaded ${file} (version ${r.revision})${r.warnings.length ? `, ${r.warnings.length} problem(s):` : ''}`);
    else log(`${why}: reload failed, still serving version ${store.revision}: ${r.error}`);
    problems(r);
    return r;
  };
  const reload = (why: string): Promise<ReloadResult> => store.reload().then(report(why));

  const servers: RunningServer[] = [];
  try {
    servers.push(await listen(createMetadataHandler({ store, xff: opts.xff }), main));
    if (reloadAt) servers.push(await listen(createReloadHandler(() => reload('POST /v1/reload')), reloadAt));
  } catch (e) {
    await Promise.all(servers.map((s) => s.close()));
    log((e as Error).message);
    return 1;
  }
  const notWatching = store.watch(report('file changed'));
  if (notWatching) log(`${notWatching}; reload with SIGHUP or POST /v1/reload`);

  const onHup = (): void => void reload('SIGHUP');
  process.on('SIGHUP', onHup);
  // One machine-readable line on stdout so callers (tests, scripts) learn the bound ports.
  process.stdout.write(`${JSON.stringify({ listening: servers[0]!.address, reload: servers[1]?.address ?? null, version: store.revision })}\n`);
  const as = opts.environment !== undefined ? ` as ${opts.selfHost !== undefined ? `host ${opts.selfHost}` : 'no host (no --self-host)'}` : '';
  log(`serving ${file}${as} on ${servers[0]!.address}${servers[1] ? `, reload on ${servers[1].address}` : ''}`);

  return new Promise<number>((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGTERM', onTerm);
      process.off('SIGINT', onInt);
      process.off('SIGHUP', onHup);
      store.unwatch();
      log(`${signal}: stopping`);
      void Promise.all(servers.map((s) => s.close())).then(() => resolve(0));
    };
    const onTerm = (): void => stop('SIGTERM');
    const onInt = (): void => stop('SIGINT');
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
  });
}
