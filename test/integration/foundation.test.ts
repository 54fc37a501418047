// The foundation through the built executable: the kernel layer in fresh
// network namespaces, the CLI, and Node-level environment that must not matter.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';

import { cleanupAll, makeNetns, netnsNames, rootLinkNames, runExe, type TestNetns } from '../helpers/harness.ts';

let linksBefore: string[];
let nsBefore: string[];

before(() => {
  linksBefore = rootLinkNames();
  nsBefore = netnsNames();
});

test('netlink self-test: veth into a fresh netns, addresses, routes, read back, delete', () => {
  const host: TestNetns = makeNetns('ccni-host');
  const pod = makeNetns('ccni-pod');
  const r = runExe('cattle-cni', { args: ['netlink-selftest', pod.path], netns: host });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const report = r.json as { ok: boolean; steps: { step: string; result?: unknown }[] };
  assert.equal(report.ok, true);
  const addrs = report.steps.find((s) => s.step === 'read back addresses')?.result as string[];
  assert.ok(addrs.includes('198.18.0.2/30') && addrs.includes('fd00:5e1f::2/64'));
  // Nothing left in either namespace.
  const podLinks = pod.ipJson<{ ifname: string }[]>('link', 'show').map((l) => l.ifname);
  assert.deepEqual(podLinks, ['lo']);
  const hostLinks = host.ipJson<{ ifname: string }[]>('link', 'show').map((l) => l.ifname);
  assert.deepEqual(hostLinks, ['lo']);
  host.destroy();
  pod.destroy();
});

test('netlink self-test: a path that is not a netns is a clear error', () => {
  const host = makeNetns('ccni-host');
  const r = runExe('cattle-cni', { args: ['netlink-selftest', '/etc/hostname'], netns: host });
  assert.equal(r.code, 1);
  assert.match(r.stderr + r.stdout, /not a network namespace: \/etc\/hostname/);
  host.destroy();
});

test('cattle-cni version and help', () => {
  const v = runExe('cattle-cni', { args: ['version'] });
  assert.equal(v.code, 0);
  assert.match(v.stdout, /^cattle-cni \d+\.\d+\.\d+ \(CNI spec versions 0\.1\.0, .*1\.1\.0\)\n$/);
  const h = runExe('cattle-cni', { args: ['--help'] });
  assert.equal(h.code, 0);
  assert.match(h.stdout, /netlink-selftest/);
});

test('NODE_OPTIONS and other Node-level variables do not change behaviour', () => {
  const plain = runExe('cattle-cni', { args: ['version'] });
  const noisy = runExe('cattle-cni', {
    args: ['version'],
    env: { NODE_OPTIONS: '--require /nonexistent.js --max-old-space-size=1', NODE_DEBUG: 'module,fs', NODE_PATH: '/nonexistent' },
  });
  assert.equal(noisy.code, 0, noisy.stderr);
  assert.equal(noisy.stdout, plain.stdout);
});

const VERSION_JSON = '{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}';

test('VERSION is exact for every plugin name, and ignores stdin', () => {
  for (const name of ['cattle-bridge', 'rancher-bridge']) {
    const r = runExe(name, { env: { CNI_COMMAND: 'VERSION' }, stdin: 'not json at all' });
    assert.equal(r.code, 0);
    assert.equal(r.stdout.trim(), VERSION_JSON);
  }
});

test('no CNI_COMMAND: a one-line "CNI <name> plugin <version>" and usage, exit 0', () => {
  const r = runExe('cattle-bridge', {});
  assert.equal(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr.split('\n')[0]!, /^CNI cattle-bridge plugin \d+\.\d+\.\d+/);
  assert.match(r.stderr, /CNI protocol versions supported: 0\.1\.0, .*1\.1\.0/);
});

test('malformed input as a new user would try it: one JSON error on stdout with the right code', () => {
  const pod = makeNetns('ccni-pod');
  const env = { CNI_COMMAND: 'ADD', CNI_CONTAINERID: 'c1', CNI_NETNS: pod.path, CNI_IFNAME: 'eth0', CNI_PATH: '/usr/lib/cni' };
  const conf = { cniVersion: '1.0.0', name: 'n', type: 'cattle-bridge', ipam: { type: 'host-local' } };
  const cases: [string, Record<string, string | undefined>, string | object, number, RegExp][] = [
    ['empty stdin', env, '', 6, /no network configuration/],
    ['invalid JSON', env, '{"cniVersion":', 6, /./],
    ['missing env', { CNI_COMMAND: 'ADD' }, conf, 4, /CNI_CONTAINERID.*CNI_NETNS.*CNI_IFNAME/],
    ['bad ifname', { ...env, CNI_IFNAME: 'eth0:1' }, conf, 4, /ifname|interface name/i],
    ['too long ifname', { ...env, CNI_IFNAME: 'a-very-long-interface' }, conf, 4, /./],
    ['bad container id', { ...env, CNI_CONTAINERID: '-bad id' }, conf, 4, /container/i],
    ['unsupported cniVersion', env, { ...conf, cniVersion: '9.9.9' }, 1, /incompatible CNI versions/],
    ['CHECK with 0.3.1', { ...env, CNI_COMMAND: 'CHECK' }, { ...conf, cniVersion: '0.3.1' }, 1, /CHECK/],
    ['unknown command', { ...env, CNI_COMMAND: 'FROB' }, conf, 4, /unknown CNI_COMMAND: FROB/],
    ['netns that does not exist', { ...env, CNI_NETNS: '/var/run/netns/ccni-nope' }, conf, 4, /CNI_NETNS/],
  ];
  for (const [what, e, stdin, code, msg] of cases) {
    const r = runExe('cattle-bridge', { env: e, stdin });
    assert.equal(r.code, 1, what);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 1, `${what}: exactly one line on stdout`);
    const err = JSON.parse(lines[0]!) as { code: number; msg: string; details?: string };
    assert.equal(err.code, code, `${what}: ${lines[0]}`);
    assert.match(`${err.msg} ${err.details ?? ''}`, msg, what);
    assert.doesNotMatch(r.stdout + r.stderr, /\n\s+at /, `${what}: no stack trace`);
  }
  pod.destroy();
});

test('left nothing behind in the root namespace', () => {
  cleanupAll(); // namespaces of failed tests; what the plugin made in the root netns stays visible
  assert.deepEqual(rootLinkNames(), linksBefore);
  assert.deepEqual(netnsNames(), nsBefore);
});
