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

test('deleteLinkUntilGone: both veth ends are gone when it settles, twice in a row on one client; a refusal surfaces', { skip: NOT_ROOT }, async (t) => {
  const name = `ccni-nldel-${process.pid}`;
  assert.equal(spawnSync('ip', ['netns', 'add', name]).status, 0);
  const ns = openNetns(`/var/run/netns/${name}`);
  try {
    const rt = Rtnetlink.open({ netnsFd: ns.fd });
    try {
      // Two pairs deleted one after the other by the same client (DEL's two candidate names):
      // each request runs on a socket of its own, so neither waits for or reads the other's reply.
      const pairs = [['nldel-a', 'nldel-b'], ['nldel-c', 'nldel-d']].map(([a, b]) => {
        rt.createVeth({ name: a!, peerName: b! });
        const host = rt.linkByName(a!)!;
        rt.setUp(host.index);
        return [host.index, rt.linkByName(b!)!.index] as const;
      });
      for (const [host, peer] of pairs) {
        await rt.deleteLinkUntilGone(host);
        assert.equal(rt.linkByIndex(host), undefined);
        assert.equal(rt.linkByIndex(peer), undefined);
      }
      // A link already gone counts as deleted; a refused deletion says why, and nothing else went.
      await rt.deleteLinkUntilGone(pairs[0]![0]);
      await assert.rejects(rt.deleteLinkUntilGone(rt.linkByName('lo')!.index), /ENOTSUP|EOPNOTSUPP/);
      assert.deepEqual(rt.links().map((l) => l.name), ['lo']);
    } finally {
      rt.close();
    }

    // A socket closed under a background request closes only after it: closed at once, its number
    // could be reused and the request's read would take another socket's replies.
    const bg = Rtnetlink.open({ netnsFd: ns.fd });
    bg.createVeth({ name: 'nldel-e', peerName: 'nldel-f' });
    const request = bg.deleteLinkInBackground(bg.linkByName('nldel-e')!.index);
    const fd = bg.sock.fd;
    const inFlight = bg.sock.busyInBackground;
    t.diagnostic(`request in flight when closed: ${inFlight}`);
    bg.close();
    assert.equal(fdOpen(fd), inFlight, inFlight ? 'closed under a request in flight' : 'not closed');
    await request;
    await until('the socket to close after its background request', () => !fdOpen(fd));
  } finally {
    ns.close();
    spawnSync('ip', ['netns', 'del', name]);
  }
});
