// The small YAML reader/writer used for answers files and YAML answers.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseYaml, plainScalar, stringifyYaml } from '../../metadata/yaml.ts';

describe('parseYaml', () => {
  it('block mappings and sequences, sequences at the key indent, nested items', () => {
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
    assert.deepEqual(parseYaml(doc), {
      a: 1,
      list: ['x', { k: 'v', k2: [1, 'two', "th'ree"] }, ['nested', 'seq']],
      map: { inner: { p: 'q', r: ['s'] }, 'quoted key': 'tab\there', url: 'http://x:80/a#frag', 'colon:in:key': 'value' },
      empty: null,
      tilde: null,
    });
  });

  it('anchors and aliases share values', () => {
    const v = parseYaml("'2015-12-19': &v\n  default:\n    c: &c1\n      n: 1\n    d: *c1\nlatest: *v\n") as Record<string, Record<string, Record<string, unknown>>>;
    assert.equal(v.latest, v['2015-12-19']);
    assert.equal(v.latest!.default!.c, v.latest!.default!.d);
  });

  it('block scalars', () => {
    assert.deepEqual(parseYaml('a: |\n  one\n  two\nb: >-\n  x\n  y\nc: 1\n'), { a: 'one\ntwo\n', b: 'x y', c: 1 });
  });

  it('scalars resolve like YAML 1.2 core', () => {
    assert.equal(plainScalar('true'), true);
    assert.equal(plainScalar('False'), false);
    assert.equal(plainScalar('null'), null);
    assert.equal(plainScalar('-12'), -12);
    assert.equal(plainScalar('1.5e3'), 1500);
    assert.equal(plainScalar('0x1f'), 31);
    assert.equal(plainScalar('10.42.0.1'), '10.42.0.1');
    assert.equal(plainScalar('2015-12-19'), '2015-12-19');
    assert.equal(plainScalar('yes'), 'yes');
  });

  it('refuses what it does not support, with a line number', () => {
    assert.throws(() => parseYaml('a: 1\n---\nb: 2\n'), /line 2: only one YAML document/);
    assert.throws(() => parseYaml('a: !!str 1\n'), /line 1: tags are not supported/);
    assert.throws(() => parseYaml('a: *nope\n'), /line 1: unknown alias \*nope/);
    assert.throws(() => parseYaml('a: 1\na: 2\n'), /line 2: duplicate key "a"/);
    assert.throws(() => parseYaml('a: "open\n'), /line 1: unterminated quoted string/);
    assert.throws(() => parseYaml('a: [1, 2\n'), /line 1: expected "," or "\]"/);
    assert.throws(() => parseYaml('a: b\n  c\n'), /line 2: multi-line plain scalars/);
  });

  it('empty documents are null', () => {
    assert.equal(parseYaml(''), null);
    assert.equal(parseYaml('# nothing\n'), null);
  });
});

describe('stringifyYaml', () => {
  it('round-trips and quotes what would read back differently', () => {
    const value = {
      version: '2015-12-19', bool: 'true', num: '42', yes: 'yes', ip: '10.42.0.1', empty: '', spaced: ' x', colon: 'a: b',
      list: [{ a: 1, b: [] }, ['x', 'y'], null, {}], nested: { deep: { deeper: [1.5, -2, true] } }, multi: 'l1\nl2',
    };
    const text = stringifyYaml(value);
    assert.deepEqual(parseYaml(text), value);
    assert.match(text, /^bool: "true"$/m);
    assert.match(text, /^version: "2015-12-19"$/m);
    assert.match(text, /^ip: 10\.42\.0\.1$/m);
  });

  it('scalars and empty containers at the top', () => {
    assert.equal(stringifyYaml(null), 'null\n');
    assert.equal(stringifyYaml([]), '[]\n');
    assert.equal(stringifyYaml({}), '{}\n');
    assert.equal(stringifyYaml('x'), 'x\n');
  });
});
