// cniglue hook mode: parsing the OCI state and Docker's config files (malformed
// input is a clear error and nothing runs), and the prestart/poststop contract
// run from source against recording fake plugins.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, it } from 'node:test';

import { HookInputError, parseHookInput } from '../../cniglue/hook.ts';
import { parseOptions } from '../../cniglue/main.ts';
import { FakePlugins, tempDir } from './runtime-fakes.ts';

const ID = '3f'.repeat(32);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

function files(hostConfig: unknown, config: unknown): Record<string, string> {
  const dir = tempDir('cglue-hook-');
  const write = (name: string, v: unknown) => {
    const f = path.join(dir, name);
    fs.writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
    return f;
  };
  return { DOCKER_HOST_CONFIG: write('hostconfig.json', hostConfig), DOCKER_CONFIG: write('config.v2.json', config) };
}

const labels = { 'io.rancher.cni.network': 'managed', 'io.rancher.container.ip': '10.42.0.9/16' };
const goodEnv = () => files({ NetworkMode: 'none' }, { ID, Config: { Labels: labels } });
const state = (extra: Record<string, unknown> = {}) => JSON.stringify({ ociVersion: '1.0.2', id: ID, status: 'creating', pid: 4242, bundle: '/run/x', ...extra });

describe('parseHookInput', () => {
  it('reads id, pid and bundle (or the older bundlePath), NetworkMode and labels', () => {
    const env = goodEnv();
    assert.deepEqual(parseHookInput(state(), env, 'prestart'), { containerId: ID, pid: 4242, bundle: '/run/x', labels, networkMode: 'none' });
    const old = parseHookInput(JSON.stringify({ version: '0.6.0', id: ID, pid: 7, bundlePath: '/old' }), env, 'prestart');
    assert.equal(old.bundle, '/old');
  });

  it('tolerates missing NetworkMode and labels (a plain container)', () => {
    const env = files({}, { ID, Config: {} });
    assert.deepEqual(parseHookInput(state(), env, 'prestart'), { containerId: ID, pid: 4242, bundle: '/run/x', labels: {}, networkMode: '' });
    const nullLabels = files({ NetworkMode: 'default' }, { ID, Config: { Labels: null } });
    assert.deepEqual(parseHookInput(state(), nullLabels, 'prestart').labels, {});
  });

  it('poststop does without a pid, prestart does not', () => {
    const env = goodEnv();
    assert.equal(parseHookInput(state({ pid: 0, status: 'stopped' }), env, 'poststop').pid, 0);
    assert.equal(parseHookInput(JSON.stringify({ id: ID }), env, 'poststop').pid, 0);
    assert.throws(() => parseHookInput(state({ pid: 0 }), env, 'prestart'), /prestart needs the container's 'pid'/);
  });

  it('rejects malformed state on stdin with a message saying what is wrong', () => {
    const env = goodEnv();
    const cases: [string, RegExp][] = [
      ['', /OCI state on stdin is empty/],
      ['{"id":', /OCI state on stdin is not valid JSON/],
      ['[1,2]', /must be a JSON object/],
      [JSON.stringify({ pid: 1 }), /'id' must be a non-empty string/],
      [state({ pid: '12' }), /'pid' must be a non-negative integer, got "12"/],
      [state({ pid: -1 }), /'pid' must be a non-negative integer/],
      [state({ pid: 1.5 }), /'pid'/],
      [state({ bundle: 5 }), /'bundle' must be a string/],
    ];
    for (const [input, re] of cases) assert.throws(() => parseHookInput(input, env, 'prestart'), (e: Error) => e instanceof HookInputError && re.test(e.message), input);
  });

  it('rejects missing, unreadable or malformed Docker config files, naming the variable and file', () => {
    const env = goodEnv();
    assert.throws(() => parseHookInput(state(), { DOCKER_CONFIG: env.DOCKER_CONFIG }, 'prestart'), /DOCKER_HOST_CONFIG is not set/);
    assert.throws(() => parseHookInput(state(), { DOCKER_HOST_CONFIG: env.DOCKER_HOST_CONFIG }, 'prestart'), /DOCKER_CONFIG is not set/);
    assert.throws(() => parseHookInput(state(), { ...env, DOCKER_CONFIG: '/nonexistent/config.v2.json' }, 'prestart'), /cannot read DOCKER_CONFIG file \/nonexistent\/config\.v2\.json: ENOENT/);
    const bad: [Record<string, string>, RegExp][] = [
      [files('{not json', { ID }), /DOCKER_HOST_CONFIG file .*hostconfig\.json is not valid JSON/],
      [files({ NetworkMode: 5 }, { ID }), /NetworkMode must be a string/],
      [files({}, { Config: {} }), /ID must be the container ID/],
      [files({}, { ID: '../x' }), /ID must be the container ID/],
      [files({}, { ID: 'b'.repeat(64) }), /is for container b{64}, the OCI state for 3f/],
      [files({}, { ID, Config: [] }), /Config must be an object/],
      [files({}, { ID, Config: { Labels: ['a'] } }), /Config\.Labels must be an object/],
      [files({}, { ID, Config: { Labels: { a: 1 } } }), /label a must be a string/],
    ];
    for (const [e, re] of bad) assert.throws(() => parseHookInput(state(), e, 'prestart'), re);
  });
});

describe('parseOptions', () => {
  it('no argument means prestart; options come from flags, then the environment, then defaults', () => {
    const d = parseOptions([], {});
    assert.equal(d.mode, 'prestart');
    assert.equal(d.glue.confRoot, '/etc/docker/cni');
    assert.equal(d.glue.cniPath.join(':'), '/opt/cni/bin:/var/lib/cni/bin:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin');
    assert.equal(d.stateDir, '/var/lib/rancher/state/cni');
    assert.equal(d.dockerHost, undefined);
    const e = parseOptions(['watch'], { CNIGLUE_CONF_ROOT: '/etc/cni', DOCKER_HOST: 'unix:///d.sock', CNIGLUE_STATE_DIR: '/s' });
    assert.deepEqual([e.mode, e.glue.confRoot, e.dockerHost, e.stateDir], ['watch', '/etc/cni', 'unix:///d.sock', '/s']);
    const f = parseOptions(['poststop', '--conf-root=/x', '--cni-path', '/a:/b', '--retries', '0'], { CNIGLUE_CONF_ROOT: '/etc/cni' });
    assert.deepEqual([f.mode, f.glue.confRoot, f.glue.cniPath, f.retries], ['poststop', '/x', ['/a', '/b'], 0]);
  });

  it('refuses unknown options, stray arguments and bad numbers', () => {
    assert.throws(() => parseOptions(['--nope'], {}), /unknown option --nope/);
    assert.throws(() => parseOptions(['prestart', 'extra'], {}), /unexpected argument "extra"/);
    assert.throws(() => parseOptions(['watch', '--max-parallel', '0'], {}), /--max-parallel needs a whole number >= 1/);
    assert.throws(() => parseOptions(['watch', '--conf-root'], {}), /--conf-root needs a value/);
  });
});

describe('runHook (from source, fake plugins)', () => {
  let fakes: FakePlugins;
  let confRoot: string;

  before(() => {
    fakes = new FakePlugins().add('fake-bridge');
    fakes.answer('fake-bridge', 'ADD', { cniVersion: '0.2.0', ip4: { ip: '10.42.0.9/16' } });
    confRoot = tempDir('cglue-hookconf-');
    fs.mkdirSync(path.join(confRoot, 'managed.d'));
    fs.writeFileSync(path.join(confRoot, 'managed.d', '10-x.conf'), JSON.stringify({ name: 'x', type: 'fake-bridge' }));
  });

  function hook(args: string[], stdin: string, env: Record<string, string>) {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'main.ts'), 'cniglue', ...args,
      '--conf-root', confRoot, '--cni-path', `${fakes.binDir}:/usr/bin:/bin`, '--cache-dir', fakes.cacheDir], {
      input: stdin, encoding: 'utf8', env: { PATH: process.env.PATH, FAKE_LOG: fakes.logDir, ...env }, timeout: 30_000,
    });
    return r;
  }

  it('prestart ADDs into /proc/<pid>/ns/net with Rancher\'s CNI_ARGS and prints the result', () => {
    fakes.clearCalls();
    const r = hook(['prestart'], state({ pid: process.pid }), goodEnv());
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).ip4, { ip: '10.42.0.9/16' });
    const [call] = fakes.calls();
    assert.equal(call!.command, 'ADD');
    assert.equal(call!.env.CNI_NETNS, `/proc/${process.pid}/ns/net`);
    assert.equal(call!.env.CNI_CONTAINERID, ID);
    assert.equal(call!.env.CNI_ARGS, 'IgnoreUnknown=1;DOCKER=true;IPAddress=10.42.0.9/16');
  });

  it('with no argument, acts as prestart', () => {
    fakes.clearCalls();
    const r = hook([], state({ pid: process.pid }), goodEnv());
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(fakes.calls().map((c) => c.command), ['ADD']);
  });

  it('malformed input: prestart fails clearly, poststop reports it and still succeeds; no plugin runs', () => {
    fakes.clearCalls();
    const pre = hook(['prestart'], '{"id": "x"', goodEnv());
    assert.equal(pre.status, 1);
    assert.match(pre.stderr, /OCI state on stdin is not valid JSON.*nothing was changed/);
    const post = hook(['poststop'], 'garbage', goodEnv());
    assert.equal(post.status, 0);
    assert.match(post.stderr, /not valid JSON/);
    const gone = hook(['prestart'], state({ pid: 999_999_999 }), goodEnv());
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /network namespace not found: \/proc\/999999999\/ns\/net.*nothing was changed/);
    assert.deepEqual(fakes.calls(), []);
  });

  it('poststop DELs without a netns and never fails the stop', () => {
    fakes.clearCalls();
    fakes.answer('fake-bridge', 'DEL', { code: 999, msg: 'boom' }, 1);
    const r = hook(['poststop'], state({ pid: 0, status: 'stopped' }), goodEnv());
    assert.equal(r.status, 0);
    assert.match(r.stderr, /boom.*ignored/);
    const [call] = fakes.calls();
    assert.equal(call!.command, 'DEL');
    assert.equal(call!.env.CNI_NETNS, '');
  });

  it('skips host and shared namespaces without running anything', () => {
    fakes.clearCalls();
    for (const mode of ['host', 'container:abc', 'none']) {
      const env = files({ NetworkMode: mode }, { ID, Config: { Labels: mode === 'none' ? {} : labels } });
      const r = hook(['prestart'], state({ pid: process.pid }), env);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /skipped/);
    }
    assert.deepEqual(fakes.calls(), []);
  });

  it('a labelled network without configurations is an error naming the directory', () => {
    const env = files({ NetworkMode: 'none' }, { ID, Config: { Labels: { 'io.rancher.cni.network': 'nowhere' } } });
    const r = hook(['prestart'], state({ pid: process.pid }), env);
    assert.equal(r.status, 1);
    assert.ok(r.stderr.includes(path.join(confRoot, 'nowhere.d')), r.stderr);
  });
});
