import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { argValue, checkKnownArgs, ignoreUnknownArgs, parseCniArgs } from '../../lib/cni/args.ts';

const K8S = 'IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u-1';

describe('parseCniArgs', () => {
  it('empty string is no args', () => {
    assert.deepEqual(parseCniArgs(''), []);
  });

  it('keeps order, case and empty values', () => {
    assert.deepEqual(parseCniArgs('B=2;a=1;A=;IP=10.0.0.5/24'), [
      ['B', '2'],
      ['a', '1'],
      ['A', ''],
      ['IP', '10.0.0.5/24'],
    ]);
  });

  it('parses the Kubernetes args', () => {
    assert.equal(parseCniArgs(K8S).length, 5);
  });

  it('ignores empty segments', () => {
    assert.deepEqual(parseCniArgs('A=1;;B=2;'), [
      ['A', '1'],
      ['B', '2'],
    ]);
  });

  it('each pair needs exactly one "="', () => {
    assert.throws(() => parseCniArgs('A=1;B'), { code: 4, msg: 'ARGS: invalid pair "B"' });
    assert.throws(() => parseCniArgs('A=1=2'), { code: 4, msg: 'ARGS: invalid pair "A=1=2"' });
  });

  it('lenient mode skips malformed pairs', () => {
    assert.deepEqual(parseCniArgs('A=1;B;C=1=2;D=4', { lenient: true }), [
      ['A', '1'],
      ['D', '4'],
    ]);
  });
});

describe('argValue', () => {
  it('returns the last occurrence, undefined when absent', () => {
    const pairs = parseCniArgs('IP=1.1.1.1;MAC=aa;IP=2.2.2.2');
    assert.equal(argValue(pairs, 'IP'), '2.2.2.2');
    assert.equal(argValue(pairs, 'MAC'), 'aa');
    assert.equal(argValue(pairs, 'mac'), undefined);
  });
});

describe('checkKnownArgs', () => {
  it('accepts known keys', () => {
    checkKnownArgs(parseCniArgs('IP=10.0.0.1;MAC=aa'), ['IP', 'MAC']);
    checkKnownArgs([], []);
  });

  it('rejects unknown keys, listing them once', () => {
    assert.throws(() => checkKnownArgs(parseCniArgs('IP=1;FOO=2;BAR=3;FOO=4'), ['IP']), {
      code: 4,
      msg: 'ARGS: unknown args [FOO,BAR]',
    });
  });

  it('keys are case-sensitive', () => {
    assert.throws(() => checkKnownArgs(parseCniArgs('ip=1'), ['IP']), { code: 4 });
  });

  it('IgnoreUnknown=1|true (any case) allows unknown keys', () => {
    checkKnownArgs(parseCniArgs(K8S), ['IP']);
    checkKnownArgs(parseCniArgs('IgnoreUnknown=true;X=1'), []);
    checkKnownArgs(parseCniArgs('IgnoreUnknown=TRUE;X=1'), []);
    checkKnownArgs(parseCniArgs('X=1;IgnoreUnknown=True'), []);
  });

  it('IgnoreUnknown is always known, but other values do not ignore', () => {
    checkKnownArgs(parseCniArgs('IgnoreUnknown=0'), []);
    for (const v of ['0', 'false', 'yes', '']) {
      assert.throws(() => checkKnownArgs(parseCniArgs(`IgnoreUnknown=${v};X=1`), []), { code: 4 }, v);
    }
    assert.equal(ignoreUnknownArgs(parseCniArgs('IgnoreUnknown=1;IgnoreUnknown=0')), false);
  });
});
