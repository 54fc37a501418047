import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parseEnv, validateContainerId, validateIfName } from '../../lib/cni/env.ts';

const FULL = {
  CNI_CONTAINERID: 'abc123',
  CNI_NETNS: '/var/run/netns/test',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=x',
  CNI_PATH: '/opt/cni/bin::/usr/lib/cni',
};

describe('parseEnv', () => {
  it('parses a full ADD environment', () => {
    assert.deepEqual(parseEnv({ ...FULL, CNI_COMMAND: 'ADD' }), {
      command: 'ADD',
      containerId: 'abc123',
      netns: '/var/run/netns/test',
      ifname: 'eth0',
      args: 'IgnoreUnknown=1;K8S_POD_NAME=x',
      path: ['/opt/cni/bin', '/usr/lib/cni'],
    });
  });

  it('reports a missing CNI_COMMAND', () => {
    assert.throws(() => parseEnv({ ...FULL }), { code: 4, msg: 'required env variables [CNI_COMMAND] missing' });
    assert.throws(() => parseEnv({ ...FULL, CNI_COMMAND: '' }), { code: 4 });
  });

  it('rejects unknown commands (case-sensitive)', () => {
    assert.throws(() => parseEnv({ ...FULL, CNI_COMMAND: 'FOO' }), { code: 4, msg: 'unknown CNI_COMMAND: FOO' });
    assert.throws(() => parseEnv({ ...FULL, CNI_COMMAND: 'add' }), { code: 4, msg: 'unknown CNI_COMMAND: add' });
  });

  it('lists every missing variable for ADD and CHECK', () => {
    for (const command of ['ADD', 'CHECK']) {
      assert.throws(() => parseEnv({ CNI_COMMAND: command }), {
        code: 4,
        msg: 'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing',
      });
      assert.throws(() => parseEnv({ ...FULL, CNI_COMMAND: command, CNI_NETNS: '' }), {
        code: 4,
        msg: 'required env variables [CNI_NETNS] missing',
      });
    }
  });

  it('DEL does not need CNI_NETNS', () => {
    const env = parseEnv({ ...FULL, CNI_COMMAND: 'DEL', CNI_NETNS: undefined });
    assert.equal(env.netns, '');
    assert.throws(() => parseEnv({ CNI_COMMAND: 'DEL' }), {
      code: 4,
      msg: 'required env variables [CNI_CONTAINERID,CNI_IFNAME,CNI_PATH] missing',
    });
  });

  it('GC and STATUS need only CNI_PATH and do not validate the rest', () => {
    for (const command of ['GC', 'STATUS']) {
      assert.throws(() => parseEnv({ CNI_COMMAND: command }), { code: 4, msg: 'required env variables [CNI_PATH] missing' });
      const env = parseEnv({ CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin', CNI_IFNAME: 'bad/name', CNI_CONTAINERID: '-x' });
      assert.equal(env.command, command);
      assert.deepEqual(env.path, ['/opt/cni/bin']);
    }
  });

  it('VERSION needs only CNI_COMMAND', () => {
    const env = parseEnv({ CNI_COMMAND: 'VERSION' });
    assert.deepEqual(env, { command: 'VERSION', containerId: '', netns: '', ifname: '', args: '', path: [] });
  });

  it('validates the container id and interface name for ADD/CHECK/DEL', () => {
    for (const command of ['ADD', 'CHECK', 'DEL']) {
      assert.throws(() => parseEnv({ ...FULL, CNI_COMMAND: command, CNI_CONTAINERID: '_abc' }), {
        code: 4,
        msg: 'invalid characters in containerID',
      });
      assert.throws(() => parseEnv({ ...FULL, CNI_COMMAND: command, CNI_IFNAME: 'eth/0' }), { code: 4 });
    }
  });
});

describe('validateContainerId', () => {
  it('accepts runtime ids', () => {
    for (const id of ['a', '0', 'cnitool-1234abcd', 'a_b.c-d', 'f'.repeat(64)]) validateContainerId(id);
  });
  it('empty is an unknown container (3)', () => {
    assert.throws(() => validateContainerId(''), { code: 3 });
  });
  it('rejects bad characters (4)', () => {
    for (const id of ['-a', '.a', '_a', 'a b', 'a/b', 'a:b', 'ä', 'a\n']) {
      assert.throws(() => validateContainerId(id), { code: 4, details: id }, JSON.stringify(id));
    }
  });
});

describe('validateIfName', () => {
  it('accepts valid names up to 15 bytes', () => {
    for (const n of ['eth0', 'e', 'a'.repeat(15), 'veth-1.2_x', '...', 'eth0@x']) validateIfName(n);
  });
  it('explains each rejection', () => {
    assert.throws(() => validateIfName(''), { code: 4, msg: 'interface name is empty' });
    assert.throws(() => validateIfName('a'.repeat(16)), { code: 4, msg: 'interface name is too long' });
    // Length is counted in bytes, like the kernel does.
    assert.throws(() => validateIfName('ä'.repeat(8)), { code: 4, msg: 'interface name is too long' });
    assert.throws(() => validateIfName('.'), { code: 4, msg: 'interface name is . or ..' });
    assert.throws(() => validateIfName('..'), { code: 4, msg: 'interface name is . or ..' });
    for (const n of ['a/b', 'a:b', 'a b', 'a\tb', 'a\nb', 'a\u00a0b', 'a\u0085b']) {
      assert.throws(
        () => validateIfName(n),
        { code: 4, msg: 'interface name contains / or : or whitespace characters' },
        JSON.stringify(n),
      );
    }
  });
});
