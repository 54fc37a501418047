// The foundation through the built executable: the kernel layer in fresh
// network namespaces, the CLI, and Node-level environment that must not matter.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
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

test('left nothing behind in the root namespace', () => {
  cleanupAll(); // namespaces of failed tests; what the plugin made in the root netns stays visible
  assert.deepEqual(rootLinkNames(), linksBefore);
  assert.deepEqual(netnsNames(), nsBefore);
});
