import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import type { NetConf } from '../../lib/cni/config.ts';
import {
  argsCni,
  parseBool,
  parseConfig,
  parseIntField,
  prevResultOf,
  runtimeConfigValue,
} from '../../lib/cni/config.ts';
import type { CniCommand } from '../../lib/cni/env.ts';

const buf = (v: unknown): Buffer => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v));
const BASE = { cniVersion: '1.1.0', name: 'rancher', type: 'cattle-bridge' };
const INCOMPATIBLE_DETAILS = (v: string): string =>
  `config is "${v}", plugin supports ["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]`;

describe('parseConfig: decoding', () => {
  it('empty stdin is a decode error with a clear message', () => {
    for (const s of ['', '   \n']) {
      assert.throws(() => parseConfig(buf(s), 'ADD'), { code: 6, msg: 'no network configuration on stdin' });
    }
  });

  it('invalid JSON is a decode error', () => {
    assert.throws(() => parseConfig(buf('{"name":'), 'ADD'), { code: 6, msg: 'error decoding network config' });
  });

  it('non-objects are decode errors', () => {
    for (const s of ['[]', 'null', '"x"', '42', 'true']) {
      assert.throws(() => parseConfig(buf(s), 'ADD'), { code: 6, msg: 'network config must be a JSON object' }, s);
    }
  });

  it('tolerates a UTF-8 byte order mark', () => {
    assert.equal(parseConfig(Buffer.from('\uFEFF' + JSON.stringify(BASE)), 'ADD').name, 'rancher');
  });
});

describe('parseConfig: fields', () => {
  it('returns every key, typed fields normalised', () => {
    const conf = parseConfig(buf({ ...BASE, bridge: 'docker0', mtu: '1500', ipam: { type: 'host-local' } }), 'ADD');
    assert.equal(conf.cniVersion, '1.1.0');
    assert.equal(conf.name, 'rancher');
    assert.equal(conf.type, 'cattle-bridge');
    assert.equal(conf.bridge, 'docker0');
    assert.equal(conf.mtu, '1500');
    assert.deepEqual(conf.ipam, { type: 'host-local' });
  });

  it('name is required and validated (7) except for VERSION', () => {
    assert.throws(() => parseConfig(buf({ cniVersion: '1.0.0', type: 'x' }), 'ADD'), { code: 7, msg: 'missing network name' });
    assert.throws(() => parseConfig(buf({ ...BASE, name: '' }), 'DEL'), { code: 7, msg: 'missing network name' });
    assert.throws(() => parseConfig(buf({ ...BASE, name: 5 }), 'ADD'), { code: 7 });
    for (const name of ['-net', 'my net', 'a/b', '_x']) {
      assert.throws(() => parseConfig(buf({ ...BASE, name }), 'CHECK'), {
        code: 7,
        msg: 'invalid characters found in network name',
      });
    }
    assert.equal(parseConfig(buf({ cniVersion: '1.1.0' }), 'VERSION').name, '');
  });

  it('the name is checked before the version, like the Go skel', () => {
    assert.throws(() => parseConfig(buf({ cniVersion: '9.9.9' }), 'ADD'), { code: 7 });
  });

  it('type must be a string when present, "" when absent', () => {
    assert.throws(() => parseConfig(buf({ ...BASE, type: 1 }), 'ADD'), { code: 7, msg: 'field "type" must be a string' });
    assert.equal(parseConfig(buf({ cniVersion: '1.0.0', name: 'n' }), 'ADD').type, '');
  });

  it('object-valued fields must be objects; null means absent', () => {
    for (const key of ['ipam', 'dns', 'runtimeConfig', 'args', 'capabilities']) {
      assert.throws(() => parseConfig(buf({ ...BASE, [key]: 'x' }), 'ADD'), { code: 7 }, key);
      assert.throws(() => parseConfig(buf({ ...BASE, [key]: [] }), 'ADD'), { code: 7 }, key);
      const conf = parseConfig(buf({ ...BASE, [key]: null }), 'ADD');
      assert.equal(key in conf, false, key);
    }
    assert.throws(() => parseConfig(buf({ ...BASE, ipam: { type: 3 } }), 'ADD'), { code: 7 });
    assert.throws(() => parseConfig(buf({ ...BASE, dns: { nameservers: '1.1.1.1' } }), 'ADD'), { code: 7 });
    assert.throws(() => parseConfig(buf({ ...BASE, dns: { domain: 1 } }), 'ADD'), { code: 7 });
  });

  it('keeps capabilities and a literal runtimeConfig', () => {
    const conf = parseConfig(
      buf({ ...BASE, capabilities: { portMappings: true }, runtimeConfig: { portMappings: [{ hostPort: 80 }] } }),
      'ADD',
    );
    assert.deepEqual(conf.capabilities, { portMappings: true });
    assert.deepEqual(runtimeConfigValue(conf, 'portMappings'), [{ hostPort: 80 }]);
    assert.equal(runtimeConfigValue(conf, 'mac'), undefined);
  });
});

describe('parseConfig: versions', () => {
  it('missing or empty cniVersion means 0.1.0', () => {
    assert.equal(parseConfig(buf({ name: 'n', type: 't' }), 'ADD').cniVersion, '0.1.0');
    assert.equal(parseConfig(buf({ name: 'n', type: 't', cniVersion: '' }), 'DEL').cniVersion, '0.1.0');
  });

  it('accepts every supported version for ADD and DEL', () => {
    for (const v of ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']) {
      for (const command of ['ADD', 'DEL'] as const) {
        assert.equal(parseConfig(buf({ ...BASE, cniVersion: v }), command).cniVersion, v);
      }
    }
  });

  it('versions must match exactly', () => {
    for (const v of ['1.2.0', '0.3', '1.0', '0.5.0', 'v1.0.0', '1.1.0 ']) {
      assert.throws(() => parseConfig(buf({ ...BASE, cniVersion: v }), 'ADD'), {
        code: 1,
        msg: 'incompatible CNI versions',
        details: INCOMPATIBLE_DETAILS(v),
      });
    }
  });

  it('cniVersion must be a string', () => {
    assert.throws(() => parseConfig(buf({ ...BASE, cniVersion: 1.1 }), 'ADD'), { code: 7 });
  });

  it('CHECK needs 0.4.0 or later', () => {
    for (const v of ['0.1.0', '0.2.0', '0.3.0', '0.3.1']) {
      assert.throws(() => parseConfig(buf({ ...BASE, cniVersion: v }), 'CHECK'), {
        code: 1,
        msg: 'config version does not allow CHECK',
      });
    }
    for (const v of ['0.4.0', '1.0.0', '1.1.0']) parseConfig(buf({ ...BASE, cniVersion: v }), 'CHECK');
  });

  it('GC and STATUS need 1.1.0', () => {
    for (const command of ['GC', 'STATUS'] as CniCommand[]) {
      for (const v of ['0.4.0', '1.0.0']) {
        assert.throws(() => parseConfig(buf({ ...BASE, cniVersion: v }), command), {
          code: 1,
          msg: `config version does not allow ${command}`,
          details: `config is "${v}", ${command} needs 1.1.0 or later`,
        });
      }
      parseConfig(buf(BASE), command);
    }
  });
});

describe('config helpers', () => {
  const conf = (extra: Record<string, unknown>): NetConf => parseConfig(buf({ ...BASE, ...extra }), 'ADD');

  it('argsCni returns args.cni or {}', () => {
    assert.deepEqual(argsCni(conf({ args: { cni: { ips: ['10.0.0.5'] } } })), { ips: ['10.0.0.5'] });
    assert.deepEqual(argsCni(conf({})), {});
    assert.deepEqual(argsCni(conf({ args: { other: 1 } })), {});
    assert.deepEqual(argsCni(conf({ args: { cni: 'x' } })), {});
  });

  it('prevResultOf reads prevResult in the config version', () => {
    assert.equal(prevResultOf(conf({})), undefined);
    const prev = prevResultOf(
      parseConfig(
        buf({ ...BASE, cniVersion: '0.4.0', prevResult: { ips: [{ version: '4', address: '10.0.0.5/24' }] } }),
        'CHECK',
      ),
    );
    assert.deepEqual(prev, { ips: [{ address: '10.0.0.5/24' }] });
    assert.throws(() => prevResultOf(conf({ prevResult: { ips: 'x' } })), { code: 6 });
  });

  it('parseBool accepts booleans, 1/0 and their strings', () => {
    const cases: [unknown, boolean][] = [
      [true, true],
      [false, false],
      ['true', true],
      ['false', false],
      ['TRUE', true],
      [' False ', false],
      ['1', true],
      ['0', false],
      [1, true],
      [0, false],
    ];
    for (const [v, want] of cases) assert.equal(parseBool(v, 'isDebugLevel'), want, JSON.stringify(v));
    for (const v of [undefined, null, '']) assert.equal(parseBool(v, 'x'), undefined);
  });

  it('parseBool rejects anything else naming the field', () => {
    for (const v of ['yes', 'no', 2, {}, [], 'tru']) {
      assert.throws(() => parseBool(v, 'hairpinMode'), { code: 7, msg: 'invalid value for "hairpinMode"' }, String(v));
    }
  });

  it('parseIntField accepts integers and integer strings', () => {
    assert.equal(parseIntField(1500, 'mtu'), 1500);
    assert.equal(parseIntField('1500', 'mtu'), 1500);
    assert.equal(parseIntField(' 1400 ', 'mtu'), 1400);
    assert.equal(parseIntField('-3', 'n'), -3);
    assert.equal(parseIntField('+3', 'n'), 3);
    assert.equal(parseIntField(0, 'vlan'), 0);
    for (const v of [undefined, null, '']) assert.equal(parseIntField(v, 'mtu'), undefined);
  });

  it('parseIntField rejects non-integers and out-of-range values naming the field', () => {
    for (const v of ['15.5', 15.5, 'abc', '0x10', '1e3', true, [], NaN, Infinity, '99999999999999999999']) {
      assert.throws(() => parseIntField(v, 'mtu'), { code: 7, msg: 'invalid value for "mtu"' }, String(v));
    }
    assert.throws(() => parseIntField('70000', 'mtu', { min: 68, max: 65535 }), {
      code: 7,
      msg: 'invalid value for "mtu"',
      details: '70000 is out of range 68..65535',
    });
    assert.throws(() => parseIntField(10, 'mtu', { min: 68 }), { code: 7 });
    assert.equal(parseIntField('68', 'mtu', { min: 68, max: 65535 }), 68);
    assert.equal(parseIntField(65535, 'mtu', { min: 68, max: 65535 }), 65535);
  });
});
