// cattle-net's options: rancher/vxlan's defaults and variables, flags win;
// the filter scripts it hands to nft / iptables-restore.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseArgs, UsageError, vtepName } from '../../agent/config.ts';
import { iptablesScript, nftMembersScript, nftTableScript } from '../../agent/filter.ts';

test('defaults are rancher/vxlan\'s', () => {
  const p = parseArgs([], {});
  assert.equal(p.command, 'run');
  assert.equal(p.options.metadataAddress, '169.254.169.250');
  assert.equal(p.options.bridge, 'docker0');
  assert.equal(p.options.vni, 1042);
  assert.equal(p.options.vtepMtu, 1500);
  assert.equal(p.options.runDir, '/run/cattle-cni');
  assert.equal(p.options.socket, '/run/cattle-cni/agent.sock');
  assert.equal(p.options.filter, true);
  assert.equal(vtepName(p.options.vni), 'vtep1042');
});

test('environment variables, then flags', () => {
  const env = { RANCHER_METADATA_ADDRESS: '10.0.0.1:8080', RANCHER_BRIDGE: 'br0', RANCHER_VXLAN_VNI: '7', RANCHER_VTEP_MTU: '1450', CATTLE_CNI_AGENT_SOCKET: 'none', CATTLE_CNI_AGENT_DIR: '/tmp/x' };
  const e = parseArgs([], env).options;
  assert.deepEqual([e.metadataAddress, e.bridge, e.vni, e.vtepMtu, e.socket, e.runDir], ['10.0.0.1:8080', 'br0', 7, 1450, undefined, '/tmp/x']);
  const f = parseArgs(['--metadata-address', '127.0.0.1:9', '--bridge=cni0', '--vni', '9', '--vtep-mtu', '1400', '--socket', '/tmp/a.sock', '--underlay-iface', 'eth0', '--no-filter'], env).options;
  assert.deepEqual([f.metadataAddress, f.bridge, f.vni, f.vtepMtu, f.socket, f.underlayIface, f.filter], ['127.0.0.1:9', 'cni0', 9, 1400, '/tmp/a.sock', 'eth0', false]);
  assert.equal(parseArgs(['status', '--json'], {}).json, true);
  assert.equal(parseArgs(['teardown'], {}).command, 'teardown');
  assert.equal(parseArgs(['--help'], {}).command, 'help');
});

test('bad values are usage errors naming their source', () => {
  assert.throws(() => parseArgs(['--vni', '0'], {}), (e: Error) => e instanceof UsageError && /--vni/.test(e.message));
  assert.throws(() => parseArgs([], { RANCHER_VXLAN_VNI: '16777216' }), /RANCHER_VXLAN_VNI/);
  assert.throws(() => parseArgs(['--vtep-mtu', 'x'], {}), /--vtep-mtu/);
  assert.throws(() => parseArgs(['--bridge', 'a/b'], {}), /--bridge/);
  assert.throws(() => parseArgs(['--bridge', 'waytoolongbridgename'], {}), /--bridge/);
  assert.throws(() => parseArgs(['--socket', 'rel.sock'], {}), /--socket/);
  assert.throws(() => parseArgs(['--what'], {}), /unknown option --what/);
  assert.throws(() => parseArgs(['--vni'], {}), /needs a value/);
  assert.throws(() => parseArgs(['stray'], {}), /unexpected argument/);
});

test('nft: one table replaced atomically, the member set, a named drop counter', () => {
  const s = nftTableScript(['192.168.100.13', '192.168.100.12'], 'eth0');
  assert.match(s, /^add table inet cattle_net\ndelete table inet cattle_net\ntable inet cattle_net \{/);
  assert.match(s, /set members \{ type ipv4_addr; elements = \{ 192\.168\.100\.12, 192\.168\.100\.13 \}; \}/);
  assert.match(s, /iifname "eth0" udp dport 4789 ip saddr @members accept\n/);
  assert.match(s, /iifname "eth0" udp dport 4789 counter name vxlan_dropped drop\n/);
  assert.doesNotMatch(nftTableScript([]), /elements|iifname/);
  assert.equal(nftMembersScript([]), 'flush set inet cattle_net members\n');
  assert.equal(nftMembersScript(['10.0.0.2', '10.0.0.1']), 'flush set inet cattle_net members\nadd element inet cattle_net members { 10.0.0.1, 10.0.0.2 }\n');
});

test('iptables fallback: the chain declared (flushed) and refilled in one commit', () => {
  assert.equal(iptablesScript(['10.0.0.2', '10.0.0.1']), '*filter\n:CATTLE-NET-VXLAN - [0:0]\n-A CATTLE-NET-VXLAN -s 10.0.0.1/32 -j ACCEPT\n-A CATTLE-NET-VXLAN -s 10.0.0.2/32 -j ACCEPT\n-A CATTLE-NET-VXLAN -j DROP\nCOMMIT\n');
});
