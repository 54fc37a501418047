import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { cnitoolContainerId, parseCnitoolArgs } from '../../cli/cnitool.ts';

describe('cnitool compatibility', () => {
  it('container ID is "cnitool-" + hex of the first 10 bytes of sha512(netns path)', () => {
    // Expected values from `printf %s PATH | sha512sum | cut -c1-20`.
    assert.equal(cnitoolContainerId('/var/run/netns/demo'), 'cnitool-81e3a71f81544407538e');
    assert.equal(cnitoolContainerId('/proc/1234/ns/net'), 'cnitool-e20e8dcf819b8b3d953a');
  });

  it('CNI_ARGS: K=V pairs with non-empty keys and values', () => {
    assert.deepEqual(parseCnitoolArgs('IgnoreUnknown=1;K8S_POD_NAME=web'), [['IgnoreUnknown', '1'], ['K8S_POD_NAME', 'web']]);
    assert.deepEqual(parseCnitoolArgs('A=1;'), [['A', '1']]);
    assert.throws(() => parseCnitoolArgs('A=1;B'), /invalid CNI_ARGS pair "B"/);
    assert.throws(() => parseCnitoolArgs('A='), /invalid CNI_ARGS pair "A="/);
    assert.throws(() => parseCnitoolArgs('=1'), /invalid CNI_ARGS pair "=1"/);
    assert.throws(() => parseCnitoolArgs('A=1=2'), /invalid CNI_ARGS pair/);
  });
});
