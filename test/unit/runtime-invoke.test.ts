import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';

import type { PluginCall } from '../../lib/runtime/invoke.ts';
import { execPlugin, execPluginJSON, findInPath, pluginEnv, PluginError } from '../../lib/runtime/invoke.ts';
import { tempDir, writeScript } from './runtime-fakes.ts';

const CALL: PluginCall = {
  command: 'ADD',
  containerId: 'c1',
  netns: '/var/run/netns/p1',
  ifname: 'eth0',
  args: 'A=1;B=2',
  path: ['/opt/cni/bin', '/usr/lib/cni'],
};

const ENV = { PATH: process.env.PATH };

function script(body: string): string {
  return writeScript(path.join(tempDir(), 'plugin'), `#!/bin/sh\n${body}\n`);
}

function failure(body: string): PluginError {
  try {
    execPlugin(script(body), '{}', CALL, { env: ENV });
  } catch (e) {
    assert.ok(e instanceof PluginError, `expected a PluginError, got ${String(e)}`);
    return e;
  }
  assert.fail('plugin did not fail');
}

describe('findInPath', () => {
  it('returns the first regular file named by type, skipping missing entries and directories', () => {
    const [a, b, c] = [tempDir(), tempDir(), tempDir()];
    fs.mkdirSync(path.join(a, 'bridge'));
    writeScript(path.join(b, 'bridge'), '#!/bin/sh\n');
    writeScript(path.join(c, 'bridge'), '#!/bin/sh\n');
    assert.equal(findInPath('bridge', [path.join(a, 'missing'), a, b, c]), path.join(b, 'bridge'));
  });

  it('follows symlinks (dist/bin links each plugin name to one executable)', () => {
    const dir = tempDir();
    writeScript(path.join(dir, 'cattle-cni'), '#!/bin/sh\n');
    fs.symlinkSync('cattle-cni', path.join(dir, 'cattle-bridge'));
    fs.symlinkSync('nowhere', path.join(dir, 'dangling'));
    assert.equal(findInPath('cattle-bridge', [dir]), path.join(dir, 'cattle-bridge'));
    assert.throws(() => findInPath('dangling', [dir]), /failed to find plugin "dangling"/);
  });

  it('says what it looked for and where', () => {
    assert.throws(() => findInPath('nosuch', ['/x', '/y']), (e: PluginError) => e.code === 7 && e.message === 'failed to find plugin "nosuch" in path [/x /y]');
    assert.throws(() => findInPath('bridge', []), /no paths provided to find plugin "bridge"/);
    assert.throws(() => findInPath('', ['/x']), /no plugin name provided/);
    assert.throws(() => findInPath('../bridge', ['/x']), /invalid plugin name: \.\.\/bridge/);
  });
});

describe('pluginEnv', () => {
  it('is the base environment plus all six CNI_* variables, which win', () => {
    const env = pluginEnv({ ...CALL, netns: '' }, { HOME: '/root', CNI_COMMAND: 'VERSION', CNI_NETNS: '/stale', UNSET: undefined });
    assert.deepEqual(env, {
      HOME: '/root',
      CNI_COMMAND: 'ADD',
      CNI_NETNS: '',
      CNI_CONTAINERID: 'c1',
      CNI_ARGS: 'A=1;B=2',
      CNI_IFNAME: 'eth0',
      CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
    });
  });
});

describe('execPlugin', () => {
  it('feeds stdin and the environment, returns stdout', () => {
    const plugin = script('printf "%s|%s|%s|%s|%s|%s|" "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH"; cat');
    assert.equal(
      execPlugin(plugin, '{"x":1}', CALL, { env: ENV }),
      'ADD|c1|/var/run/netns/p1|eth0|A=1;B=2|/opt/cni/bin:/usr/lib/cni|{"x":1}',
    );
  });

  it('passes the plugin stderr (its logs) on when it succeeds', () => {
    const seen: string[] = [];
    execPlugin(script('echo log line >&2; echo "{}"'), '{}', CALL, { env: ENV, onStderr: (t, p) => seen.push(`${path.basename(p)}: ${t}`) });
    assert.deepEqual(seen, ['plugin: log line\n']);
  });

  it('reads a failed plugin error from stdout: code, msg, details', () => {
    const e = failure(`echo '{"cniVersion":"1.0.0","code":11,"msg":"try again later","details":"lock busy"}'; exit 1`);
    assert.equal(e.code, 11);
    assert.equal(e.msg, 'try again later');
    assert.equal(e.details, 'lock busy');
    assert.equal(e.exitCode, 1);
  });

  it('empty stdout: the message gives the exit status and the stderr text', () => {
    const e = failure('echo "cannot open netns" >&2; exit 3');
    assert.equal(e.message, 'netplugin failed: "cannot open netns": exit status 3');
    assert.equal(e.stderr, 'cannot open netns\n');
    assert.equal(failure('exit 2').message, 'netplugin failed with no error message: exit status 2');
    assert.equal(failure('kill -9 $$').message, 'netplugin failed with no error message: signal: SIGKILL');
  });

  it('stdout that is not a CNI error is quoted', () => {
    assert.match(failure('echo "panic: oops"; exit 2').message, /^netplugin failed but error parsing its diagnostic message "panic: oops": /);
    assert.match(failure('echo "[1]"; exit 2').message, /exit status 2\) with output that is not a CNI error: "\[1\]"/);
  });

  it('a plugin that exits without reading a large stdin still counts by its exit status and output', () => {
    const big = JSON.stringify({ pad: 'x'.repeat(1 << 20) });
    assert.equal(execPlugin(script('echo done'), big, CALL, { env: ENV }), 'done\n');
    assert.throws(() => execPlugin(script(`echo '{"code":4,"msg":"bad env"}'; exit 1`), big, CALL, { env: ENV }), /bad env/);
  });

  it('a plugin that cannot be executed is named', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'noexec'), '#!/bin/sh\n', { mode: 0o644 });
    assert.throws(() => execPlugin(path.join(dir, 'noexec'), '', CALL, { env: ENV }), new RegExp(`failed to execute plugin ${dir}/noexec: .*EACCES`));
  });

  it('a plugin past its time limit is killed and reported', () => {
    assert.throws(() => execPlugin(script('sleep 5'), '', CALL, { env: ENV, timeoutMs: 200 }), /timed out after 200 ms/);
  });

  it('retries on "text file busy" while the binary is being written, like libcni', async () => {
    const plugin = script('echo ok');
    // A writer holds the file open for ~0.5 s, so exec fails with ETXTBSY until it is gone.
    const writer = spawn('sh', ['-c', 'exec 3>>"$0"; sleep 0.5', plugin], { stdio: 'ignore' });
    await delay(150);
    try {
      assert.throws(() => execPlugin(plugin, '', CALL, { env: ENV, busyRetries: 0 }), /ETXTBSY/);
      assert.equal(execPlugin(plugin, '', CALL, { env: ENV, busyRetries: 10, busyDelayMs: 100 }), 'ok\n');
    } finally {
      writer.kill();
    }
  });
});

describe('execPluginJSON', () => {
  it('parses stdout; nothing printed is undefined; junk is an error', () => {
    assert.deepEqual(execPluginJSON(script('cat'), { a: [1] }, CALL, { env: ENV }), { a: [1] });
    assert.equal(execPluginJSON(script('true'), {}, CALL, { env: ENV }), undefined);
    assert.throws(() => execPluginJSON(script('echo "{nope"'), {}, CALL, { env: ENV }), /printed output that is not JSON/);
  });
});
