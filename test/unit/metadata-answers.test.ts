// Answers files: shape checks, defaults merged into clients, the served
// version, `latest`, and path resolution (index, name, uuid, lowercase retry).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

import {
  AnswersError, checkAnswers, clientTree, emptyAnswers, KNOWN_VERSIONS, lookupPath, parseAnswersText, prepareAnswers, resolveVersion,
} from '../../metadata/answers.ts';
import { AnswersStore } from '../../metadata/store.ts';

describe('checkAnswers / parseAnswersText', () => {
  it('accepts the classic shape and names the broken part otherwise', async () => {
    assert.deepEqual(checkAnswers({ v: { default: { a: 1 } } }, 'f'), { v: { default: { a: 1 } } });
    assert.deepEqual(checkAnswers(null, 'f'), {});
    assert.throws(() => checkAnswers([], 'f.json'), /f\.json: the answers must be an object of versions/);
    assert.throws(() => checkAnswers({ v: 3 }, 'f'), /"v" must be an object of clients/);
    assert.throws(() => checkAnswers({ v: { '10.0.0.1': 'x' } }, 'f'), /"v"\."10\.0\.0\.1" must be an object/);
    await assert.rejects(parseAnswersText('{', 'a.json'), (e: Error) => e instanceof AnswersError && /a\.json: invalid JSON/.test(e.message));
    await assert.rejects(parseAnswersText('a: [1, 2', 'a.yaml'), /a\.yaml: invalid YAML: line 1/);
    assert.deepEqual(await parseAnswersText('\uFEFF{"v":{"default":{}}}', 'a.json'), { v: { default: {} } });
  });

  it('a missing file serves every known version, empty, with a version key', async () => {
    const store = new AnswersStore('/nonexistent-dir-cattle/answers.json');
    const r = await store.reload();
    assert.equal(r.ok, true);
    assert.deepEqual(Object.keys(store.answers), [...KNOWN_VERSIONS]);
    assert.equal(store.answers['2015-12-19']!.default!.version, store.revision);
    assert.deepEqual(Object.keys(emptyAnswers()), [...KNOWN_VERSIONS]);
    assert.match(store.watch(() => {}) ?? '', /cannot watch \/nonexistent-dir-cattle: .*ENOENT/);
  });
});

describe('prepareAnswers', () => {
  it('copies default keys into clients (the client wins) and sets version everywhere', () => {
    const out = prepareAnswers({ v: { default: { a: 1, b: 2, version: 'file' }, '10.0.0.1': { b: 3 } } }, '42');
    assert.deepEqual(out.v!.default, { a: 1, b: 2, version: '42' });
    assert.deepEqual(out.v!['10.0.0.1'], { a: 1, b: 3, version: '42' });
  });

  it('a version aliased under another name stays one tree', () => {
    const shared = { default: { a: 1 } };
    const out = prepareAnswers({ '2015-12-19': shared, latest: shared }, '1');
    assert.equal(out.latest, out['2015-12-19']);
  });

  it('each publish bumps the revision and wakes listeners', () => {
    const store = new AnswersStore(undefined, { v: { default: {} } });
    const first = Number(store.revision);
    let woke = 0;
    const off = store.onChange(() => woke++);
    store.publish({ v: { default: {} } });
    assert.ok(Number(store.revision) > first);
    assert.equal(woke, 1);
    off();
    store.publish({ v: { default: {} } });
    assert.equal(woke, 1);
  });
});

describe('resolveVersion and clientTree', () => {
  const answers = prepareAnswers({ '2015-07-25': { default: { x: 'old' } }, '2016-07-29': { default: { x: 'new' }, '10.1.1.1': { x: 'mine' } } }, '1');

  it('latest: the literal key, else the highest version; unknown versions are undefined', () => {
    assert.equal(resolveVersion(answers, 'latest'), '2016-07-29');
    assert.equal(resolveVersion({ ...answers, latest: {} }, 'latest'), 'latest');
    assert.equal(resolveVersion(answers, '2015-07-25'), '2015-07-25');
    assert.equal(resolveVersion(answers, '2015-12-19'), undefined);
    assert.equal(resolveVersion({}, 'latest'), undefined);
  });

  it('the client entry, else default', () => {
    assert.equal(clientTree(answers, '2016-07-29', '10.1.1.1')!.x, 'mine');
    assert.equal(clientTree(answers, '2016-07-29', '10.9.9.9')!.x, 'new');
    assert.equal(clientTree(answers, 'nope', '10.9.9.9'), undefined);
  });
});

describe('lookupPath', () => {
  const tree = {
    containers: [{ name: 'web', uuid: 'u1', ports: ['80'] }, { name: 'DB', uuid: 'u2' }, 'plain'],
    Mixed: { Key: 1 },
    zero: 0,
    nothing: null,
  };

  it('walks objects, arrays by index, name or uuid', () => {
    assert.deepEqual(lookupPath(tree, []), { found: true, value: tree });
    assert.deepEqual(lookupPath(tree, ['containers', '0', 'name']), { found: true, value: 'web' });
    assert.deepEqual(lookupPath(tree, ['containers', 'u2', 'name']), { found: true, value: 'DB' });
    assert.deepEqual(lookupPath(tree, ['containers', 'web', 'ports', '0']), { found: true, value: '80' });
    assert.deepEqual(lookupPath(tree, ['zero']), { found: true, value: 0 });
    assert.deepEqual(lookupPath(tree, ['nothing']), { found: true, value: null });
  });

  it('misses: bad index, unknown name, walking into a scalar, inherited keys', () => {
    for (const p of [['containers', '3'], ['containers', '-1'], ['containers', 'nope'], ['zero', 'x'], ['toString'], ['containers', 'plain']]) {
      assert.deepEqual(lookupPath(tree, p), { found: false }, p.join('/'));
    }
  });

  it('retries lowercased only when the exact path fails', () => {
    assert.deepEqual(lookupPath(tree, ['CONTAINERS', 'WEB', 'NAME']), { found: true, value: 'web' });
    assert.deepEqual(lookupPath(tree, ['Mixed', 'Key']), { found: true, value: 1 });
    assert.deepEqual(lookupPath(tree, ['MIXED', 'KEY']), { found: false }); // lowercase "mixed" is not a key either
    assert.deepEqual(lookupPath(tree, ['containers', 'DB', 'uuid']), { found: true, value: 'u2' });
  });
});

describe('AnswersStore reloads', () => {
  it('a file that disappears keeps the answers; one that appears is served', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cattle-store-'));
    try {
      const file = path.join(dir, 'a.json');
      const store = new AnswersStore(file);
      assert.equal((await store.reload()).ok, true); // missing at start: empty answers
      fs.writeFileSync(file, '{"v": {"default": {"k": 1}}}');
      assert.equal((await store.reload()).ok, true);
      assert.equal(store.answers.v!.default!.k, 1);
      fs.rmSync(file);
      const gone = await store.reload();
      assert.equal(gone.ok, false);
      assert.match((gone as { error: string }).error, /a\.json does not exist/);
      assert.equal(store.answers.v!.default!.k, 1);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
