// cniglue CNI_ARGS: Rancher's fixed order, keys without a label left out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { ArgsError, cniArgsFor, formatCniArgs } from '../../cniglue/args.ts';
import { parseCniArgs } from '../../lib/cni/args.ts';

const ALL = {
  'io.rancher.container.ip': '10.42.36.71/16',
  'io.rancher.container.mac_address': '02:a1:b2:c3:d4:e5',
  'io.rancher.cni.link_mtu_overhead': '0',
  'io.rancher.container.uuid': '4f5e5d43-8a45-4ad6-9bbd-1c2f0b4b1a77',
  'io.rancher.cni.network': 'managed',
  'unrelated': 'x;y',
};

describe('cniArgsFor', () => {
  it('sends every Rancher key in the fixed order, whatever the label order', () => {
    assert.equal(formatCniArgs(cniArgsFor(ALL)),
      'IgnoreUnknown=1;DOCKER=true;RancherContainerUUID=4f5e5d43-8a45-4ad6-9bbd-1c2f0b4b1a77;LinkMTUOverhead=0;MACAddress=02:a1:b2:c3:d4:e5;IPAddress=10.42.36.71/16');
  });

  it('leaves out keys whose label is missing or blank', () => {
    assert.equal(formatCniArgs(cniArgsFor({})), 'IgnoreUnknown=1;DOCKER=true');
    assert.equal(formatCniArgs(cniArgsFor({ 'io.rancher.container.ip': '10.42.0.5/16', 'io.rancher.container.uuid': '  ' })),
      'IgnoreUnknown=1;DOCKER=true;IPAddress=10.42.0.5/16');
    assert.equal(formatCniArgs(cniArgsFor({ 'io.rancher.container.mac_address': '02:00:00:00:00:01', 'io.rancher.cni.link_mtu_overhead': '50' })),
      'IgnoreUnknown=1;DOCKER=true;LinkMTUOverhead=50;MACAddress=02:00:00:00:00:01');
  });

  it('gives pairs the CNI_ARGS parser reads back unchanged', () => {
    const pairs = cniArgsFor(ALL);
    assert.deepEqual(parseCniArgs(formatCniArgs(pairs)), pairs);
  });

  it('refuses values CNI_ARGS cannot carry instead of sending other arguments', () => {
    assert.throws(() => cniArgsFor({ 'io.rancher.container.ip': '10.42.0.5/16;IP=1.2.3.4' }), ArgsError);
    assert.throws(() => cniArgsFor({ 'io.rancher.container.uuid': 'a=b' }), /io\.rancher\.container\.uuid/);
    assert.throws(() => cniArgsFor({ 'io.rancher.container.mac_address': 'x\ny' }), ArgsError);
  });
});
