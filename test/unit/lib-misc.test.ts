// Small mechanisms: IP math, host veth names and marks, iptables rule
// parsing, the dispatch table, the lock and the netns wrapper's guard rails.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import { ENTRIES, entryName } from '../../entries.ts';
import { hashSeedIsFixed } from '../../lib/hash-seed.ts';
import { hashedVethName, isOwnedBy, networkTag, ownerMark, parseOwnerMark } from '../../lib/hostveth.ts';
import { bytesToMac, containsIp, isValidMac, macToBytes, networkOf, nthAddress, parseCidr } from '../../lib/ip.ts';
import { masqChainName, splitRule } from '../../lib/masq.ts';
import { interfaceKey, sysctlPath } from '../../lib/sysctl.ts';
import { hostVethName } from '../../plugins/bridge/bridge.ts';

test('CIDR parsing keeps host bits; network and n-th address', () => {
  assert.deepEqual(parseCidr('10.42.7.9/16'), { ip: '10.42.7.9', prefix: 16, family: 4 });
  assert.equal(networkOf(parseCidr('10.42.7.9/16')), '10.42.0.0/16');
  assert.equal(nthAddress(parseCidr('10.42.7.9/16'), 1), '10.42.0.1');
  assert.equal(nthAddress(parseCidr('10.0.0.0/8'), 256), '10.0.1.0');
  assert.equal(nthAddress(parseCidr('fd00::5/64'), 1), 'fd00::1');
  assert.ok(containsIp(parseCidr('10.42.0.0/16'), '10.42.200.1'));
  assert.ok(!containsIp(parseCidr('10.42.0.0/16'), 'fd00::1'));
  assert.throws(() => parseCidr('10.1.2.3'), /invalid CIDR/);
  assert.throws(() => parseCidr('10.1.2.300/24'), /invalid CIDR/);
});

test('MAC helpers', () => {
  assert.ok(isValidMac('0A:58:0a:00:00:01'));
  assert.ok(!isValidMac('0a:58:0a:00:00'));
  assert.equal(bytesToMac(macToBytes('0a:58:0a:00:00:ff')), '0a:58:0a:00:00:ff');
});

test('host veth names: Rancher vethr for Docker ids on eth0, else a 15-char hash that differs per ifname', () => {
  const docker = 'a'.repeat(10) + 'b'.repeat(54);
  assert.equal(hostVethName({ containerId: docker, ifname: 'eth0' }), 'vethraaaaaaaaaa');
  const a = hostVethName({ containerId: docker, ifname: 'net1' });
  const b = hostVethName({ containerId: 'cnitool-0123456789abcdef0123', ifname: 'eth0' });
  const c = hostVethName({ containerId: 'cnitool-0123456789abcdef0123', ifname: 'eth1' });
  for (const n of [a, b, c]) assert.match(n, /^veth[0-9a-f]{11}$/);
  assert.notEqual(b, c);
  assert.equal(hashedVethName('cali', { containerId: 'x', ifname: 'eth0' }).length, 15);
});

test('ownership marks round-trip and only match the same attachment', () => {
  const owner = { containerId: 'abc', ifname: 'eth0' };
  const mark = ownerMark('cattle-bridge', owner, 'net1');
  assert.equal(mark, `cattle-cni cattle-bridge abc eth0 ${networkTag('net1')}`);
  assert.deepEqual(parseOwnerMark(mark), { plugin: 'cattle-bridge', container: 'abc', ifname: 'eth0', network: networkTag('net1') });
  assert.equal(parseOwnerMark('something else'), undefined);
  assert.equal(parseOwnerMark(undefined), undefined);
  const link = { index: 1, name: 'v', flags: 0, mtu: 1500, operState: 'up' as const, alias: mark };
  assert.ok(isOwnedBy(link, 'cattle-bridge', owner, 'net1'));
  assert.ok(!isOwnedBy(link, 'cattle-bridge', owner, 'net2'), 'another network');
  assert.ok(!isOwnedBy(link, 'cattle-bridge', { containerId: 'abc', ifname: 'eth1' }, 'net1'));
  assert.ok(!isOwnedBy(link, 'cattle-ptp', owner, 'net1'));
  // marks of earlier versions (no network) still name their attachment
  assert.ok(isOwnedBy({ ...link, alias: 'cattle-cni cattle-bridge abc eth0' }, 'cattle-bridge', owner, 'any'));
});

test('a mark fits the 255-byte alias limit for any container id, and tells long ids apart', () => {
  const long = (c: string) => ({ containerId: c.repeat(5000), ifname: 'eth0' });
  const a = ownerMark('cattle-bridge', long('a'), 'n'.repeat(1000));
  assert.ok(Buffer.byteLength(a) <= 255, `${Buffer.byteLength(a)} bytes`);
  const link = { index: 1, name: 'v', flags: 0, mtu: 1500, operState: 'up' as const, alias: a };
  assert.ok(isOwnedBy(link, 'cattle-bridge', long('a'), 'n'.repeat(1000)));
  const sameStart = { containerId: `${'a'.repeat(4999)}b`, ifname: 'eth0' };
  assert.ok(!isOwnedBy(link, 'cattle-bridge', sameStart, 'n'.repeat(1000)), 'same prefix, other id');
});

test('masquerade chain names fit iptables (≤ 28) and rules split with quoted comments', () => {
  const chain = masqChainName('net', 'container', 'eth0');
  assert.match(chain, /^CCNI-[0-9a-f]{23}$/);
  assert.equal(chain.length, 28);
  assert.deepEqual(splitRule('-A POSTROUTING -s 10.1.0.5/32 -m comment --comment "cattle-cni name: \\"n\\" id: \\"c\\"" -j CCNI-1'),
    ['-A', 'POSTROUTING', '-s', '10.1.0.5/32', '-m', 'comment', '--comment', 'cattle-cni name: "n" id: "c"', '-j', 'CCNI-1']);
});

test('dispatch: invoked name first, unknown names stay unknown', () => {
  assert.equal(entryName('/opt/cni/bin/cattle-bridge', '/opt/cni/bin/cattle-bridge'), 'cattle-bridge');
  assert.equal(entryName('rancher-bridge', undefined), 'rancher-bridge');
  assert.equal(entryName('/usr/bin/whatever', 'x'), 'whatever');
  for (const name of ['cattle-cni', 'cattle-bridge', 'rancher-bridge']) assert.ok(name in ENTRIES, name);
});

test('sysctl keys: dotted or slashed, interface names with dots', () => {
  assert.equal(sysctlPath('net.ipv4.ip_forward'), '/proc/sys/net/ipv4/ip_forward');
  assert.equal(sysctlPath(interfaceKey(4, 'eth0.100', 'forwarding')), '/proc/sys/net/ipv4/conf/eth0.100/forwarding');
});

test('lock: a second process waits until the first releases', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-lock-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const lockTs = JSON.stringify(path.resolve('lib/lock.ts'));
  const mark = (name: string) => JSON.stringify(path.join(dir, name));
  // Events, not delays: A holds the lock until B has said it is about to take it; B may only get it after A released.
  const a = `
    import fs from 'node:fs';
    import { acquireLock } from ${lockTs};
    const l = acquireLock('t');
    fs.writeFileSync(${mark('a-held')}, '');
    while (!fs.existsSync(${mark('b-wants')})) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // let B reach its flock
    console.log('A', String(process.hrtime.bigint()));
    l.release();`;
  const b = `
    import fs from 'node:fs';
    import { acquireLock } from ${lockTs};
    fs.writeFileSync(${mark('b-wants')}, '');
    const l = acquireLock('t');
    console.log('B', String(process.hrtime.bigint()));
    l.release();`;
  const env = { ...process.env, CATTLE_CNI_LOCK_DIR: path.join(dir, 'locks') };
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', `
    import { spawn } from 'node:child_process';
    import fs from 'node:fs';
    spawn(process.execPath, ['--input-type=module', '-e', ${JSON.stringify(a)}], { stdio: 'inherit' });
    const wait = () => fs.existsSync(${mark('a-held')}) ? spawn(process.execPath, ['--input-type=module', '-e', ${JSON.stringify(b)}], { stdio: 'inherit' }) : setTimeout(wait, 5);
    wait();`], { env, encoding: 'utf8', timeout: 60_000 });
  const lines = run.stdout.trim().split('\n').map((l) => l.split(' '));
  assert.deepEqual(lines.map((l) => l[0]), ['A', 'B'], run.stderr);
  assert.ok(BigInt(lines[1]![1]!) >= BigInt(lines[0]![1]!), 'B held the lock only after A released it');
});

test('hashHex: stable, hex, well spread over similar inputs', async () => {
  const { hashHex } = await import('../../lib/hash.ts');
  assert.equal(hashHex('abc/eth0', 11), hashHex('abc/eth0', 11));
  assert.match(hashHex('x', 32), /^[0-9a-f]{32}$/);
  const seen = new Set<string>();
  for (let i = 0; i < 20000; i++) seen.add(hashHex(`cnitool-${i}/eth0`, 11));
  assert.equal(seen.size, 20000, 'no collisions among 20000 neighbouring ids');
  assert.notEqual(hashHex('a/eth0', 11).slice(0, 4), hashHex('b/eth0', 11).slice(0, 4));
});

test('hashSeedIsFixed: the last of --rehash-snapshot / --no-rehash-snapshot decides', () => {
  assert.equal(hashSeedIsFixed([]), false);
  assert.equal(hashSeedIsFixed(['--no-rehash-snapshot']), true);
  assert.equal(hashSeedIsFixed(['--no-rehash-snapshot', '--stack-size=900']), true);
  assert.equal(hashSeedIsFixed(['--no-rehash-snapshot', '--rehash-snapshot', '--disable-warning=Warning']), false);
  assert.equal(hashSeedIsFixed(['--rehash-snapshot', '--no-rehash-snapshot']), true);
});
