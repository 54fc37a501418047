// withNetnsSync guard rails (runs as root: switches into a fresh netns).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

import { currentNetnsId, NetnsError, openNetns, withNetnsSync } from '../../lib/netns.ts';

const NOT_ROOT = process.getuid?.() !== 0 ? 'needs root: it makes a network namespace and switches into it' : false;

test('withNetnsSync runs inside the target, restores afterwards, and rejects async functions', { skip: NOT_ROOT }, () => {
  const name = `ccni-guard-${process.pid}`;
  spawnSync('ip', ['netns', 'add', name]);
  try {
    const ns = openNetns(`/var/run/netns/${name}`);
    const before = currentNetnsId();
    const inside = withNetnsSync(ns, () => currentNetnsId());
    assert.notEqual(inside, before);
    assert.equal(currentNetnsId(), before);
    assert.throws(() => withNetnsSync(ns, () => Promise.resolve(1)), /must be synchronous/);
    assert.equal(currentNetnsId(), before);
    assert.throws(() => withNetnsSync(ns, () => { throw new Error('boom'); }), /boom/);
    assert.equal(currentNetnsId(), before);
    ns.close();
  } finally {
    spawnSync('ip', ['netns', 'del', name]);
  }
});

test('openNetns: missing path and non-netns files are typed errors', () => {
  assert.throws(() => openNetns('/var/run/netns/does-not-exist'), (e: unknown) => e instanceof NetnsError && e.reason === 'missing');
  assert.throws(() => openNetns('/etc/hostname'), (e: unknown) => e instanceof NetnsError && e.reason === 'invalid');
  assert.throws(() => openNetns('/proc/self/ns/uts'), (e: unknown) => e instanceof NetnsError && e.reason === 'invalid');
});
