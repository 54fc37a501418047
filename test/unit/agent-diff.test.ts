// cattle-net sends only the difference between its applied view and the
// desired state: properties of the diff, and the view's file round trip.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { applyToView, diff, diffEntries, emptyApplied, isEmpty, viewFromJson, viewToJson } from '../../agent/diff.ts';

test('diff: additions, removals and MAC changes, sorted', () => {
  const applied = new Map([['10.0.0.1', 'aa:aa:aa:aa:aa:01'], ['10.0.0.2', 'aa:aa:aa:aa:aa:02'], ['10.0.0.3', 'aa:aa:aa:aa:aa:03']]);
  const desired = new Map([['10.0.0.3', 'aa:aa:aa:aa:aa:09'], ['10.0.0.2', 'aa:aa:aa:aa:aa:02'], ['10.0.0.4', 'aa:aa:aa:aa:aa:04']]);
  assert.deepEqual(diffEntries(applied, desired), {
    put: [['10.0.0.3', 'aa:aa:aa:aa:aa:09'], ['10.0.0.4', 'aa:aa:aa:aa:aa:04']],
    remove: [['10.0.0.1', 'aa:aa:aa:aa:aa:01']],
  });
  assert.ok(isEmpty(diff({ fdb: desired, neighbours: desired }, { peers: desired, neighbours: desired })));
});

const entries = fc.dictionary(fc.ipV4(), fc.constantFrom('0e:00:c0:a8:64:0b', '0e:00:c0:a8:64:0c', '0e:00:c0:a8:64:0d'), { maxKeys: 40 }).map((o) => new Map(Object.entries(o)));

test('property: applying the diff to the view gives exactly the desired state; a second diff is empty', () => {
  fc.assert(fc.property(entries, entries, entries, entries, (af, an, df, dn) => {
    const applied = { fdb: af, neighbours: an };
    const desired = { peers: df, neighbours: dn };
    const c = diff(applied, desired);
    const after = applyToView(applied, c);
    assert.deepEqual([...after.fdb].sort(), [...df].sort());
    assert.deepEqual([...after.neighbours].sort(), [...dn].sort());
    assert.ok(isEmpty(diff(after, desired)));
    // Nothing unchanged is touched.
    for (const [k] of c.neighbours.put) assert.notEqual(an.get(k), dn.get(k));
    for (const [k] of c.neighbours.remove) assert.ok(!dn.has(k));
    assert.equal(c.fdb.put.length + c.fdb.remove.length <= af.size + df.size, true);
  }));
});

test('the view survives its file; garbage in the file is ignored', () => {
  const v = { fdb: new Map([['192.168.100.12', '0e:00:c0:a8:64:0c']]), neighbours: new Map([['10.42.2.10', '0e:00:c0:a8:64:0c']]) };
  assert.deepEqual(viewFromJson(JSON.parse(JSON.stringify(viewToJson(v)))), v);
  assert.deepEqual(viewFromJson(undefined), emptyApplied());
  assert.deepEqual(viewFromJson({ fdb: { a: 'not a mac', b: 5 }, neighbours: 'x' }), emptyApplied());
});
