// Fake CNI plugins for the runtime unit tests: small /bin/sh scripts in a temp
// dir that record each call (stdin and the six CNI_* variables) and answer with canned output.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';

const RECORDING_PLUGIN = `#!/bin/sh
# Records the call as <n>-<name>-<command>.{stdin,env} in $FAKE_LOG, then prints
# <name>.<command>.out if present and exits with <name>.<command>.exit (default 0).
# Shell built-ins where possible: the tests make many calls.
dir=\${0%/*}; name=\${0##*/}; n=0
for f in "$FAKE_LOG"/*.stdin; do [ -e "$f" ] && n=$((n + 1)); done
base="$FAKE_LOG/$(printf %03d "$n")-$name-$CNI_COMMAND"
cat > "$base.stdin"
printf 'CNI_ARGS=%s\\nCNI_COMMAND=%s\\nCNI_CONTAINERID=%s\\nCNI_IFNAME=%s\\nCNI_NETNS=%s\\nCNI_PATH=%s\\n' \\
  "$CNI_ARGS" "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$CNI_NETNS" "$CNI_PATH" > "$base.env"
out="$dir/$name.$CNI_COMMAND"
[ -f "$out.stderr" ] && cat "$out.stderr" >&2
[ -f "$out.out" ] && cat "$out.out"
code=0; [ -f "$out.exit" ] && read -r code < "$out.exit"
exit "$code"
`;

const tempDirs: string[] = [];
after(() => {
  for (const d of tempDirs) fs.rmSync(d, { recursive: true, force: true });
});

export function tempDir(prefix = 'ccni-rt-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(d);
  return d;
}

export function writeScript(file: string, text: string): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o755 });
  return file;
}

export interface Call {
  plugin: string;
  command: string;
  stdin: Record<string, unknown>;
  env: Record<string, string>;
}

/** A plugin dir of recording fakes, a log of their calls and a cache dir. */
export class FakePlugins {
  readonly binDir: string;
  readonly logDir: string;
  readonly cacheDir: string;

  constructor() {
    const root = tempDir();
    this.binDir = path.join(root, 'bin');
    this.logDir = path.join(root, 'log');
    this.cacheDir = path.join(root, 'cache');
    fs.mkdirSync(this.logDir, { recursive: true });
  }

  add(name: string): this {
    writeScript(path.join(this.binDir, name), RECORDING_PLUGIN);
    return this;
  }

  /** What `name` answers to `command`: stdout text (objects as JSON), exit code and stderr. */
  answer(name: string, command: string, out: unknown, exit = 0, stderr?: string): this {
    const text = typeof out === 'string' ? out : JSON.stringify(out);
    fs.writeFileSync(path.join(this.binDir, `${name}.${command}.out`), text);
    fs.writeFileSync(path.join(this.binDir, `${name}.${command}.exit`), String(exit));
    if (stderr !== undefined) fs.writeFileSync(path.join(this.binDir, `${name}.${command}.stderr`), stderr);
    return this;
  }

  /** Runtime options pointing at these fakes. */
  opts(extra: Record<string, unknown> = {}) {
    return {
      path: [this.binDir],
      cacheDir: this.cacheDir,
      env: { PATH: process.env.PATH, FAKE_LOG: this.logDir },
      onStderr: () => {},
      ...extra,
    };
  }

  calls(): Call[] {
    const names = fs.readdirSync(this.logDir).filter((f) => f.endsWith('.stdin')).sort();
    return names.map((f) => {
      const base = f.slice(0, -'.stdin'.length);
      const [, plugin, command] = /^\d+-(.+)-([A-Z]+)$/.exec(base)!;
      const stdinText = fs.readFileSync(path.join(this.logDir, f), 'utf8');
      const env: Record<string, string> = {};
      for (const line of fs.readFileSync(path.join(this.logDir, `${base}.env`), 'utf8').split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
      }
      return { plugin: plugin!, command: command!, stdin: stdinText ? JSON.parse(stdinText) : {}, env };
    });
  }

  clearCalls(): void {
    for (const f of fs.readdirSync(this.logDir)) fs.rmSync(path.join(this.logDir, f));
  }
}
