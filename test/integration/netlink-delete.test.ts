// Deleting a link from a pool thread (lib/netlink): settled once the link is
// gone, the socket closed under a request still in flight only after it, and
// the request's own error reported. Real kernel, in a fresh netns.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { test } from 'node:test';

import { Rtnetlink } from '../../lib/netlink/rtnetlink.ts';
import { openNetns } from '../../lib/netns.ts';

const NOT_ROOT = process.getuid?.() !== 0 ? 'needs root: it makes a network namespace' : false;

function fdOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

async function until(what: string, cond: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 30_000; !cond();) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('deleteLinkUntilGone: both veth ends are gone when it settles; close() waits for the request; a refusal surfaces', { skip: NOT_ROOT }, async (t) => {
  const name = `ccni-nldel-${process.pid}`;
  assert.equal(spawnSync('ip', ['netns', 'add', name]).status, 0);
  const ns = openNetns(`/var/run/netns/${name}`);
  try {
    const rt = Rtnetlink.open({ netnsFd: ns.fd });
    rt.createVeth({ name: 'nldel-a', peerName: 'nldel-b' });
    const a = rt.linkByName('nldel-a')!;
    const b = rt.linkByName('nldel-b')!;
    rt.setUp(a.index);
    await rt.deleteLinkUntilGone(a.index);
    assert.equal(rt.linkByIndex(a.index), undefined);
    assert.equal(rt.linkByIndex(b.index), undefined);

    // Closed at once, the fd could be reused under the request's read: it closes after the request.
    const fd = rt.sock.fd;
    const inFlight = rt.sock.busyInBackground;
    t.diagnostic(`request still in flight when the link was gone: ${inFlight}`);
    rt.close();
    assert.equal(fdOpen(fd), inFlight, inFlight ? 'closed under a request in flight' : 'not closed');
    await until('the socket to close after its background request', () => !fdOpen(fd));

    // The next client works as usual; a link already gone counts as deleted; a refused deletion says why.
    const again = Rtnetlink.open({ netnsFd: ns.fd });
    try {
      await again.deleteLinkUntilGone(a.index);
      const lo = again.linkByName('lo')!;
      await assert.rejects(again.deleteLinkUntilGone(lo.index), /ENOTSUP|EOPNOTSUPP/);
      assert.deepEqual(again.links().map((l) => l.name), ['lo']);
    } finally {
      again.close();
    }
  } finally {
    ns.close();
    spawnSync('ip', ['netns', 'del', name]);
  }
});
