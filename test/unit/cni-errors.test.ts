import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import * as errors from '../../lib/cni/errors.ts';
import { CniError, errorJSON, MAX_ERROR_TEXT, toCniError } from '../../lib/cni/errors.ts';

describe('errors', () => {
  it('cuts echoed input: an error stays one readable object whatever the input\'s size (fuzz: a 1 MiB cniVersion)', () => {
    const huge = 'A'.repeat(1 << 20);
    const j = errorJSON(new CniError(1, `bad ${huge}`, `config is "${huge}"`), '1.1.0');
    assert.ok(j.msg.length < MAX_ERROR_TEXT + 64 && j.details!.length < MAX_ERROR_TEXT + 64);
    assert.match(j.details!, /… \(\d+ more characters\)$/);
    assert.equal(errorJSON(new CniError(7, 'short', 'fine'), '1.0.0').details, 'fine');
  });

  it('has the spec codes', () => {
    assert.deepEqual(
      {
        v: errors.ERR_INCOMPATIBLE_VERSION,
        f: errors.ERR_UNSUPPORTED_FIELD,
        c: errors.ERR_UNKNOWN_CONTAINER,
        e: errors.ERR_INVALID_ENV,
        io: errors.ERR_IO,
        d: errors.ERR_DECODE,
        cfg: errors.ERR_INVALID_CONFIG,
        ns: errors.ERR_INVALID_NETNS,
        again: errors.ERR_TRY_AGAIN_LATER,
        na: errors.ERR_NOT_AVAILABLE,
        deg: errors.ERR_DEGRADED,
        internal: errors.ERR_INTERNAL,
      },
      { v: 1, f: 2, c: 3, e: 4, io: 5, d: 6, cfg: 7, ns: 8, again: 11, na: 50, deg: 51, internal: 999 },
    );
  });

  it('CniError carries code, msg and details and is an Error', () => {
    const e = new CniError(7, 'Invalid Configuration', 'mtu too big');
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'CniError');
    assert.equal(e.code, 7);
    assert.equal(e.msg, 'Invalid Configuration');
    assert.equal(e.details, 'mtu too big');
    assert.equal(e.message, 'Invalid Configuration: mtu too big');
    assert.equal(new CniError(5, 'x').message, 'x');
  });

  it('toCniError passes CniErrors through unchanged', () => {
    const e = new CniError(11, 'busy');
    assert.equal(toCniError(e), e);
  });

  it('toCniError maps plain errors to 999 with the message only', () => {
    const plain = new Error('boom');
    const e = toCniError(plain);
    assert.equal(e.code, 999);
    assert.equal(e.msg, 'boom');
    assert.equal(e.details, undefined);
    assert.equal(e.cause, plain);
    assert.ok(!JSON.stringify(errorJSON(e, '1.1.0')).includes('at '));
  });

  it('toCniError handles non-Error values', () => {
    assert.equal(toCniError('text').msg, 'text');
    assert.equal(toCniError(42).msg, '42');
    assert.equal(toCniError(undefined).msg, 'undefined');
    assert.equal(toCniError(Object.create(null)).msg, 'internal error');
    assert.equal(toCniError(new Error('')).msg, 'Error');
  });

  it('errorJSON shape, details omitted when empty', () => {
    assert.equal(
      JSON.stringify(errorJSON(new CniError(7, 'Invalid Configuration', 'x'), '0.4.0')),
      '{"cniVersion":"0.4.0","code":7,"msg":"Invalid Configuration","details":"x"}',
    );
    assert.equal(JSON.stringify(errorJSON(new CniError(3, 'gone', ''), '1.1.0')), '{"cniVersion":"1.1.0","code":3,"msg":"gone"}');
    assert.equal(JSON.stringify(errorJSON(new Error('e'), '1.0.0')), '{"cniVersion":"1.0.0","code":999,"msg":"e"}');
  });
});
