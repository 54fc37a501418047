// The answers being served, their revision (the `version` key), and reloads:
// a failed reload keeps the old answers; a good one bumps the revision and
// wakes every long-poll.
import fs from 'node:fs';
import path from 'node:path';

import { type Answers, emptyAnswers, parseAnswersText, prepareAnswers } from './answers.ts';

/** `warnings`: what the file has that is not served (left-out entries), reported on every reload. */
export type ReloadResult = { ok: true; revision: string; changed: boolean; warnings: string[] } | { ok: false; error: string };

/**
 * Turns the file's text (undefined: the file does not exist) into the answers to serve; throws
 * (an AnswersError naming the file) when nothing can be served from it.
 */
export type AnswersParser = (text: string | undefined, file: string) => Promise<{ answers: Answers; warnings: string[] }>;

/** The classic answers file: `{version: {client: tree}}`. */
export const classicParser: AnswersParser = async (text, file) => ({
  answers: text === undefined ? emptyAnswers() : await parseAnswersText(text, file),
  warnings: [],
});

export class AnswersStore {
  readonly file: string | undefined;
  private served: Answers = {};
  private rev = 0;
  private lastText: string | undefined;
  private readonly listeners = new Set<() => void>();
  private watcher: fs.FSWatcher | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private pending: Promise<unknown> = Promise.resolve();

  private readonly parse: AnswersParser;

  /** A store over `file` read by `parse`, or over fixed answers (tests) when no file is given. */
  constructor(file?: string, answers?: Answers, parse: AnswersParser = classicParser) {
    this.file = file;
    this.parse = parse;
    if (answers) this.publish(answers);
  }

  /** The revision served as `version`: increasing, and unlike any of an earlier run (it starts at the clock). */
  get revision(): string {
    return String(this.rev);
  }

  get answers(): Answers {
    return this.served;
  }

  /** Serve these answers (already checked) and wake long-polls. */
  publish(answers: Answers): string {
    this.rev = Math.max(this.rev + 1, Date.now());
    this.served = prepareAnswers(answers, this.revision);
    for (const fn of [...this.listeners]) fn();
    return this.revision;
  }

  /** Called on every publish; returns the unsubscribe function. */
  onChange(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /**
   * Read the file again. `onlyIfChanged` (file-change events) skips an identical file so a
   * spurious event wakes nobody; SIGHUP and POST /v1/reload always bump the version.
   */
  reload(onlyIfChanged = false): Promise<ReloadResult> {
    // One at a time: two overlapping reads could otherwise publish the older file last.
    const next = this.pending.then(() => this.reloadNow(onlyIfChanged));
    this.pending = next.catch(() => undefined);
    return next;
  }

  private async reloadNow(onlyIfChanged: boolean): Promise<ReloadResult> {
    if (!this.file) return { ok: true, revision: this.revision, changed: false, warnings: [] };
    let text: string | undefined;
    try {
      text = await fs.promises.readFile(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return { ok: false, error: `cannot read ${this.file}: ${(e as Error).message}` };
      // Missing at start: serve empty answers until it appears. Gone later: most likely being
      // replaced; keep what we serve.
      if (this.lastText !== undefined) return { ok: false, error: `${this.file} does not exist` };
    }
    if (onlyIfChanged && text === this.lastText && this.rev > 0) return { ok: true, revision: this.revision, changed: false, warnings: [] };
    let parsed: { answers: Answers; warnings: string[] };
    try {
      parsed = await this.parse(text, this.file);
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
    this.lastText = text;
    return { ok: true, revision: this.publish(parsed.answers), changed: true, warnings: parsed.warnings };
  }

  /**
   * Reload when the file changes. The directory is watched (editors and our CLI replace the file
   * by rename); an in-place write gets a short settle time to finish before the file is read.
   * Returns why watching is impossible (e.g. the directory does not exist), else undefined.
   */
  watch(onReload: (r: ReloadResult) => void, settleMs = 15): string | undefined {
    if (!this.file || this.watcher) return undefined;
    const dir = path.dirname(path.resolve(this.file));
    const base = path.basename(this.file);
    try {
      this.watcher = fs.watch(dir, { persistent: false }, (event, name) => this.changed(event, name, base, settleMs, onReload));
    } catch (e) {
      return `cannot watch ${dir}: ${(e as Error).message}`;
    }
    this.watcher.on('error', () => this.unwatch());
    return undefined;
  }

  private changed(event: string, name: string | null, base: string, settleMs: number, onReload: (r: ReloadResult) => void): void {
    if (name !== null && name !== base) return;
    clearTimeout(this.watchTimer);
    // A rename put a complete file in place: read it now. In-place writes get time to finish.
    this.watchTimer = setTimeout(() => {
      void this.reload(true).then((r) => {
        if (!r.ok || r.changed) onReload(r);
      });
    }, event === 'rename' ? 0 : settleMs);
  }

  unwatch(): void {
    clearTimeout(this.watchTimer);
    this.watcher?.close();
    this.watcher = undefined;
  }
}
