// cniglue network selection: labels first, then NetworkMode; never a container
// that shares the host's or another container's netns (Rancher #9700).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { SelectionError, selectNetwork } from '../../cniglue/select.ts';

const sel = (networkMode: string, labels: Record<string, string> = {}) => selectNetwork({ networkMode, labels });

describe('selectNetwork', () => {
  it('takes the io.rancher.cni.network label first', () => {
    assert.deepEqual(sel('none', { 'io.rancher.cni.network': 'ipsec' }), { network: 'ipsec', source: 'label' });
    assert.deepEqual(sel('bridge', { 'io.rancher.cni.network': 'managed', 'io.rancher.container.network': 'true' }), { network: 'managed', source: 'label' });
    assert.deepEqual(sel('', { 'io.rancher.cni.network': ' vxlan ' }), { network: 'vxlan', source: 'label' });
  });

  it('maps the legacy io.rancher.container.network=true label to managed', () => {
    assert.deepEqual(sel('none', { 'io.rancher.container.network': 'true' }), { network: 'managed', source: 'legacy-label' });
    assert.deepEqual(sel('none', { 'io.rancher.container.network': 'TRUE' }), { network: 'managed', source: 'legacy-label' });
    assert.ok('skip' in sel('none', { 'io.rancher.container.network': 'false' }));
  });

  it('falls back to NetworkMode: empty or default is "default", others by name', () => {
    assert.deepEqual(sel(''), { network: 'default', source: 'network-mode' });
    assert.deepEqual(sel('default'), { network: 'default', source: 'network-mode' });
    assert.deepEqual(sel('bridge'), { network: 'bridge', source: 'network-mode' });
    assert.deepEqual(sel('my-net.1'), { network: 'my-net.1', source: 'network-mode' });
  });

  it('skips none without a label', () => {
    const s = sel('none');
    assert.ok('skip' in s && /none/.test(s.skip));
    assert.ok('skip' in sel('none', { 'io.rancher.cni.network': '' }), 'an empty label is no label');
  });

  it('never networks host or container:* namespaces, labels or not', () => {
    const variants: Record<string, string>[] = [{}, { 'io.rancher.cni.network': 'managed' }, { 'io.rancher.container.network': 'true' }];
    for (const labels of variants) {
      const host = sel('host', labels);
      assert.ok('skip' in host && /host/.test(host.skip), JSON.stringify(labels));
      const shared = sel('container:0123abcd', labels);
      assert.ok('skip' in shared && /0123abcd/.test(shared.skip), JSON.stringify(labels));
    }
  });

  it('refuses names that could leave the configuration root', () => {
    for (const bad of ['../etc', '..', '.hidden', 'a/b', 'a b', '-x']) {
      assert.throws(() => sel('none', { 'io.rancher.cni.network': bad }), SelectionError, bad);
    }
    assert.throws(() => sel('../../x'), /invalid network name "..\/..\/x" from NetworkMode/);
  });
});
