import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { diff } from '../../agent/diff.ts';
import { kernelView } from '../../agent/kernel.ts';
import { NUD_PERMANENT, NUD_REACHABLE, type Rtnetlink } from '../../lib/netlink/rtnetlink.ts';

const A = '0e:00:c0:a8:64:0c';
const B = '0e:00:c0:a8:64:0d';

/** Only what kernelView reads: the FDB and the neighbours of one link. */
function fakeRt(fdb: { mac?: string; dst?: string; state: number }[], neighbours: { dst?: string; mac?: string; state: number }[]): Rtnetlink {
  return { fdb: () => fdb, neighbours: () => neighbours } as unknown as Rtnetlink;
}

describe('kernelView (the applied view read back from our VTEP)', () => {
  it('takes every permanent entry of the VTEP, also those the recorded view lacks (a killed agent, a hand edit)', () => {
    const rt = fakeRt(
      [{ mac: A, dst: '192.168.100.12', state: NUD_PERMANENT }, { mac: B, dst: '192.168.100.13', state: NUD_PERMANENT }, { mac: 'aa:bb:cc:dd:ee:ff', state: NUD_PERMANENT }],
      [{ dst: '10.42.2.10', mac: A, state: NUD_PERMANENT }, { dst: '10.42.9.9', mac: B, state: NUD_PERMANENT }, { dst: '10.42.7.7', mac: A, state: NUD_REACHABLE }],
    );
    const recorded = { fdb: new Map([['192.168.100.12', A]]), neighbours: new Map([['10.42.2.10', A], ['10.42.2.11', A]]) };
    const r = kernelView(rt, 5, recorded);
    assert.deepEqual([...r.view.fdb].sort(), [['192.168.100.12', A], ['192.168.100.13', B]]);
    assert.deepEqual([...r.view.neighbours].sort(), [['10.42.2.10', A], ['10.42.9.9', B]]);
    assert.equal(r.missing, 1, '10.42.2.11 was recorded but is not in the kernel');
    assert.equal(r.extra, 2, 'the FDB entry of .13 and the neighbour 10.42.9.9 were not recorded');
    // The diff against the desired state then removes the stale and puts the missing.
    const c = diff(r.view, { peers: new Map([['192.168.100.12', A]]), neighbours: new Map([['10.42.2.10', A], ['10.42.2.11', A]]) });
    assert.deepEqual(c.fdb, { put: [], remove: [['192.168.100.13', B]] });
    assert.deepEqual(c.neighbours, { put: [['10.42.2.11', A]], remove: [['10.42.9.9', B]] });
  });

  it('a destination with two MACs keeps the recorded one', () => {
    const rt = fakeRt([{ mac: B, dst: '192.168.100.12', state: NUD_PERMANENT }, { mac: A, dst: '192.168.100.12', state: NUD_PERMANENT }], []);
    const r = kernelView(rt, 5, { fdb: new Map([['192.168.100.12', A]]), neighbours: new Map() });
    assert.deepEqual([...r.view.fdb], [['192.168.100.12', A]]);
    assert.equal(r.missing, 0);
  });
});
