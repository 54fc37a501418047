// YAML answers files (read with the `yaml` package, YAML 1.2 core) and YAML answers (written as
// rancher-metadata's Go yaml.v2 writes them).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';

import { parseYaml } from '../../metadata/answers.ts';
import { loadYaml, stringifyYaml } from '../../metadata/render.ts';

/** A plain scalar as the answers reader resolves it. */
async function scalar(text: string): Promise<unknown> {
  return ((await parseYaml(`v: ${text}\n`)) as { v: unknown }).v;
}

describe('parseYaml', () => {
  it('block mappings and sequences, sequences at the key indent, nested items', async () => {
    const doc = [
      '# answers',
      '---',
      'a: 1',
      'list:',
      '- x',
      '- k: v',
      '  k2: [1, "two", \'th\'\'ree\']',
      '- - nested',
      '  - seq',
      'map:',
      '  inner: {p: q, r: [s]}   # trailing comment',
      '  "quoted key": "tab\\there"',
      '  url: http://x:80/a#frag',
      '  colon:in:key: value',
      'empty:',
      'tilde: ~',
    ].join('\n');
    assert.deepEqual(await parseYaml(doc), {
      a: 1,
      list: ['x', { k: 'v', k2: [1, 'two', "th'ree"] }, ['nested', 'seq']],
      map: { inner: { p: 'q', r: ['s'] }, 'quoted key': 'tab\there', url: 'http://x:80/a#frag', 'colon:in:key': 'value' },
      empty: null,
      tilde: null,
    });
  });

  it('anchors and aliases share values', async () => {
    const v = await parseYaml("'2015-12-19': &v\n  default:\n    c: &c1\n      n: 1\n    d: *c1\nlatest: *v\n") as Record<string, Record<string, Record<string, unknown>>>;
    assert.equal(v.latest, v['2015-12-19']);
    assert.equal(v.latest!.default!.c, v.latest!.default!.d);
  });

  it('merge keys, as Go yaml.v2 reads them; a quoted "<<" is a plain key', async () => {
    assert.deepEqual(await parseYaml('base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n'), { base: { x: 1, y: 2 }, m: { x: 1, y: 3 } });
    assert.deepEqual(await parseYaml('a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n  z: 3\n'), { a: { x: 1 }, b: { y: 2 }, c: { x: 1, y: 2, z: 3 } });
    assert.deepEqual(await parseYaml('"<<": 1\n'), { '<<': 1 });
  });

  it('many aliases of one anchor (per-client trees sharing one record)', async () => {
    const text = `c: &c {n: 1}\n${Array.from({ length: 2000 }, (_, i) => `k${i}: *c`).join('\n')}\n`;
    const v = await parseYaml(text) as Record<string, unknown>;
    assert.equal(v.k1999, v.c);
  });

  it('block scalars, multi-line plain scalars, BOM, core tags', async () => {
    assert.deepEqual(await parseYaml('a: |\n  one\n  two\nb: >-\n  x\n  y\nc: 1\n'), { a: 'one\ntwo\n', b: 'x y', c: 1 });
    assert.deepEqual(await parseYaml('a: b\n  c\n'), { a: 'b c' });
    assert.deepEqual(await parseYaml('\uFEFFa: 1\n'), { a: 1 });
    assert.deepEqual(await parseYaml('a: !!str 1\nb: !!int "2"\n'), { a: '1', b: 2 });
  });

  it('scalars resolve like YAML 1.2 core', async () => {
    assert.equal(await scalar('true'), true);
    assert.equal(await scalar('False'), false);
    assert.equal(await scalar('null'), null);
    assert.equal(await scalar('-12'), -12);
    assert.equal(await scalar('1.5e3'), 1500);
    assert.equal(await scalar('0x1f'), 31);
    assert.equal(await scalar('0o17'), 15);
    assert.equal(await scalar('.inf'), Infinity);
    assert.equal(await scalar('10.42.0.1'), '10.42.0.1');
    assert.equal(await scalar('2015-12-19'), '2015-12-19');
    assert.equal(await scalar('yes'), 'yes');
  });

  it('refuses what an answers file cannot be, with a line number', async () => {
    await assert.rejects(parseYaml('a: 1\n---\nb: 2\n'), /^Error: line 2, column 1: only one YAML document is supported$/);
    await assert.rejects(parseYaml('a: !foo 1\n'), /^Error: line 1, column 4: Unresolved tag: !foo$/);
    await assert.rejects(parseYaml('a: !!binary aGk=\n'), /^Error: line 1, column 4: Unresolved tag/);
    await assert.rejects(parseYaml('x: &n 1\na: *n\nb: *nope\n'), /^Error: line 3, column 4: unknown alias \*nope$/);
    await assert.rejects(parseYaml('a: 1\na: 2\n'), /^Error: line 2, column 1: Map keys must be unique/);
    await assert.rejects(parseYaml('a: "open\n'), /^Error: line 2, column 1: Missing closing "quote/);
    await assert.rejects(parseYaml('a: [1, 2'), /^Error: line 1, column 9: Flow sequence/);
    await assert.rejects(parseYaml('\ta: 1\n'), /^Error: line 1, column 1: Tabs are not allowed as indentation/);
    await assert.rejects(parseYaml('a: &x\n  b: *x\n'), /^Error: line 2, column 6: alias \*x inside its own anchor$/);
    await assert.rejects(parseYaml('a: &x [*x]\n'), /^Error: line 1, column 8: alias \*x inside its own anchor$/);
    await assert.rejects(parseYaml('? [a]\n: 1\n'), /^Error: line 1, column 3: a key must be a scalar$/);
  });

  it('empty documents are null', async () => {
    assert.equal(await parseYaml(''), null);
    assert.equal(await parseYaml('# nothing\n'), null);
  });
});

describe('stringifyYaml', () => {
  before(() => loadYaml());

  it('round-trips and quotes what would read back differently', async () => {
    const value = {
      version: '2015-12-19', bool: 'true', num: '42', yes: 'yes', ip: '10.42.0.1', empty: '', spaced: ' x', colon: 'a: b',
      list: [{ a: 1, b: [] }, ['x', 'y'], null, {}], nested: { deep: { deeper: [1.5, -2, true] } }, multi: 'l1\nl2',
      float: '1.0', exp: '1e3', octal: '0o17', octal11: '0755', underscored: '1_000', sexagesimal: '1:20', on: 'on', n: 'N', tilde: '~',
      ctrl: 'a\tb\x01', uni: 'héllo ✓', mac: '02:42:ac:11:00:02', long: 'word '.repeat(40).trim(), binary: '0b101', '<<': { merge: '<<' },
    };
    const text = stringifyYaml(value);
    assert.deepEqual(await parseYaml(text), value);
    for (const line of [
      'bool: "true"', 'version: "2015-12-19"', 'ip: 10.42.0.1', 'num: "42"', 'float: "1.0"', 'empty: ""', 'spaced: " x"', 'colon: "a: b"',
      // what YAML 1.1 (Go's yaml.v2) reads as a boolean, a number or a date, keys included
      '"yes": "yes"', '"on": "on"', '"n": "N"', 'octal11: "0755"', 'underscored: "1_000"', 'sexagesimal: "1:20"', 'binary: "0b101"', '"<<":', '  merge: "<<"',
      'mac: 02:42:ac:11:00:02', `long: ${value.long}`,
    ]) assert.ok(text.split('\n').includes(line), `${line}\n--- in ---\n${text}`);
    // Multi-line strings as a literal block, as yaml.v2 writes them.
    assert.match(text, /^multi: \|-\n {2}l1\n {2}l2$/m);
    assert.match(text, /^list:\n- a: 1\n {2}b: \[\]\n- - x\n {2}- "y"\n- null\n- \{\}\n/m);
  });

  it('sorted keys, sequences at the key indent, shared values written out again ("y" is a YAML 1.1 boolean)', () => {
    const shared = { s: 1 };
    assert.equal(stringifyYaml({ b: shared, a: shared, c: { z: [1], y: 2 } }), 'a:\n  s: 1\nb:\n  s: 1\nc:\n  "y": 2\n  z:\n  - 1\n');
  });

  it('scalars and empty containers at the top', () => {
    assert.equal(stringifyYaml(null), 'null\n');
    assert.equal(stringifyYaml(undefined), 'null\n');
    assert.equal(stringifyYaml([]), '[]\n');
    assert.equal(stringifyYaml({}), '{}\n');
    assert.equal(stringifyYaml('x'), 'x\n');
    assert.equal(stringifyYaml('true'), '"true"\n');
  });
});
