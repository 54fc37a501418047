import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { diff } from '../../agent/diff.ts';
import { applyChanges, emptyForeign, kernelView } from '../../agent/kernel.ts';
import { NetlinkError } from '../../lib/netlink/errors.ts';
import { NEIGH_PROTO_CATTLE_NET, NUD_PERMANENT, NUD_REACHABLE, type Rtnetlink } from '../../lib/netlink/rtnetlink.ts';

const A = '0e:00:c0:a8:64:0c';
const B = '0e:00:c0:a8:64:0d';
const OURS = NEIGH_PROTO_CATTLE_NET;

type Entry = { mac?: string; dst?: string; state: number; protocol?: number };

/** Only what kernelView reads: the FDB and the neighbours of one link. */
function fakeRt(fdb: Entry[], neighbours: Entry[]): Rtnetlink {
  return { fdb: () => fdb, neighbours: () => neighbours } as unknown as Rtnetlink;
}

describe('kernelView (the applied view read back from our VTEP)', () => {
  it('takes our entries (marked neighbours, recorded ones), also those a killed agent left unrecorded; the rest is foreign', () => {
    const rt = fakeRt(
      [
        { mac: A, dst: '192.168.100.12', state: NUD_PERMANENT }, // recorded: ours
        { mac: B, dst: '192.168.100.13', state: NUD_PERMANENT }, // not recorded: by hand
        { mac: 'aa:bb:cc:dd:ee:ff', state: NUD_PERMANENT }, // no destination (the bridge's): not an overlay entry
      ],
      [
        { dst: '10.42.2.10', mac: A, state: NUD_PERMANENT, protocol: OURS }, // ours, recorded
        { dst: '10.42.9.9', mac: B, state: NUD_PERMANENT, protocol: OURS }, // ours, unrecorded (a killed agent)
        { dst: '10.42.2.12', mac: A, state: NUD_PERMANENT }, // unmarked but recorded: an earlier version's
        { dst: '10.42.8.8', mac: B, state: NUD_PERMANENT }, // unmarked, unrecorded: by hand
        { dst: '10.42.6.6', mac: A, state: NUD_PERMANENT, protocol: 4 }, // another tool's mark
        { dst: '10.42.7.7', mac: A, state: NUD_REACHABLE }, // the kernel's own
      ],
    );
    const recorded = { fdb: new Map([['192.168.100.12', A]]), neighbours: new Map([['10.42.2.10', A], ['10.42.2.11', A], ['10.42.2.12', A]]) };
    const r = kernelView(rt, 5, recorded);
    assert.deepEqual([...r.view.fdb].sort(), [['192.168.100.12', A]]);
    assert.deepEqual([...r.view.neighbours].sort(), [['10.42.2.10', A], ['10.42.2.12', A], ['10.42.9.9', B]]);
    assert.deepEqual([...r.foreign.fdb], [`${B} 192.168.100.13`]);
    assert.deepEqual([...r.foreign.neighbours].sort(), [['10.42.6.6', A], ['10.42.8.8', B]]);
    assert.deepEqual([...r.foreign.transient], ['10.42.7.7']);
    assert.equal(r.missing, 1, '10.42.2.11 was recorded but is not in the kernel');
    assert.equal(r.extra, 1, 'the marked neighbour 10.42.9.9 was not recorded');
    // The diff against the desired state then removes our stale ones and puts the missing; foreign ones are not in it.
    const c = diff(r.view, { peers: new Map([['192.168.100.12', A]]), neighbours: new Map([['10.42.2.10', A], ['10.42.2.11', A], ['10.42.2.12', A]]) });
    assert.deepEqual(c.fdb, { put: [], remove: [] });
    assert.deepEqual(c.neighbours, { put: [['10.42.2.11', A]], remove: [['10.42.9.9', B]] });
  });

  it('a VTEP just taken over (claimAll): every permanent entry is ours', () => {
    const rt = fakeRt([{ mac: B, dst: '192.168.100.13', state: NUD_PERMANENT }], [{ dst: '10.42.8.8', mac: B, state: NUD_PERMANENT }]);
    const r = kernelView(rt, 5, { fdb: new Map(), neighbours: new Map() }, true);
    assert.deepEqual([...r.view.fdb], [['192.168.100.13', B]]);
    assert.deepEqual([...r.view.neighbours], [['10.42.8.8', B]]);
    assert.equal(r.foreign.fdb.size + r.foreign.neighbours.size, 0);
  });

  it('a destination with two MACs keeps the recorded one', () => {
    const rt = fakeRt([{ mac: B, dst: '192.168.100.12', state: NUD_PERMANENT }, { mac: A, dst: '192.168.100.12', state: NUD_PERMANENT }], []);
    const r = kernelView(rt, 5, { fdb: new Map([['192.168.100.12', A]]), neighbours: new Map() });
    assert.deepEqual([...r.view.fdb], [['192.168.100.12', A]]);
    assert.equal(r.missing, 0);
  });
});

describe('applyChanges (only our entries are replaced or removed)', () => {
  const eexist = (): never => {
    throw new NetlinkError('add neighbour', 17);
  };

  it('new neighbours are added with our mark (EXCL), ours replaced; foreign keys are left alone; EEXIST asks for a read', () => {
    const calls: string[] = [];
    const rt = {
      addNeighbour: (_i: number, n: { dst: string; mac: string; protocol?: number }) => (n.dst === '10.42.5.5' ? eexist() : calls.push(`add ${n.dst} ${n.mac} proto ${n.protocol}`)),
      replaceNeighbour: (_i: number, n: { dst: string; mac: string; protocol?: number }) => calls.push(`replace ${n.dst} ${n.mac} proto ${n.protocol}`),
      delNeighbour: (_i: number, dst: string) => calls.push(`del ${dst}`),
      appendFdb: (_i: number, e: { mac: string; dst: string }) => calls.push(`append ${e.mac} ${e.dst}`),
      delFdb: (_i: number, e: { mac: string; dst: string }) => calls.push(`delfdb ${e.mac} ${e.dst}`),
    } as unknown as Rtnetlink;
    const view = { fdb: new Map<string, string>(), neighbours: new Map([['10.42.2.10', A], ['10.42.2.11', A]]) };
    const foreign = emptyForeign();
    foreign.neighbours.set('10.42.8.8', B);
    foreign.fdb.add(`${B} 192.168.100.13`);
    foreign.transient.add('10.42.7.7');
    const r = applyChanges(rt, 5, view, {
      fdb: { put: [['192.168.100.12', A], ['192.168.100.13', B]], remove: [] },
      neighbours: { put: [['10.42.2.10', B], ['10.42.3.3', A], ['10.42.5.5', A], ['10.42.7.7', A], ['10.42.8.8', A]], remove: [['10.42.2.11', A]] },
    }, foreign);
    assert.deepEqual(calls, [
      'del 10.42.2.11',
      `append ${A} 192.168.100.12`,
      `replace 10.42.2.10 ${B} proto ${OURS}`,
      `add 10.42.3.3 ${A} proto ${OURS}`,
      `replace 10.42.7.7 ${A} proto ${OURS}`,
    ]);
    assert.deepEqual([...r.applied.neighbours].sort(), [['10.42.2.10', B], ['10.42.3.3', A], ['10.42.7.7', A]]);
    assert.deepEqual([...r.applied.fdb], [['192.168.100.12', A]]);
    assert.equal(r.unknown, 1, '10.42.5.5 exists though unknown');
    assert.equal(r.conflicts.length, 2);
    assert.match(r.conflicts.join('\n'), /fdb 0e:00:c0:a8:64:0d dst 192\.168\.100\.13 exists, not made by cattle-net/);
    assert.match(r.conflicts.join('\n'), /neighbour 10\.42\.8\.8 \(lladdr 0e:00:c0:a8:64:0d\) exists, not made by cattle-net/);
    assert.deepEqual(r.errors, []);
    assert.deepEqual(r.counts, { fdbAdded: 1, fdbRemoved: 0, neighboursSet: 3, neighboursRemoved: 1 });
  });
});
