// cniglue `-p`: Docker's HostConfig.PortBindings as the `portMappings`
// capability (ports.ts), read by the hook from hostconfig.json and by the
// watcher from docker inspect, kept in the attachment record, and handed by
// the runtime library only to the plugins that declare the capability, on ADD
// and DEL alike. The real dockerd and the reference portmap are in
// test/integration/cniglue.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { containerInfoFrom } from '../../cniglue/docker.ts';
import { attachmentFromCache, glueAdd, glueDel, type GlueSettings } from '../../cniglue/glue.ts';
import { parseHookInput } from '../../cniglue/hook.ts';
import { asPortMappings, formatPortMappings, PortBindingsError, portCapabilityArgs, type PortMapping, portMappingsFrom } from '../../cniglue/ports.ts';
import { readAttachmentRecord, RECORD_FILE, writeAttachmentRecord } from '../../cniglue/state.ts';
import { listCacheEntries } from '../../lib/runtime/cache.ts';
import { FakePlugins, tempDir } from './runtime-fakes.ts';

const ID = '5e'.repeat(32);
const ROOT = path.resolve(import.meta.dirname, '..', '..');

const tcp = (hostPort: number, containerPort: number, hostIP?: string): PortMapping => ({ hostPort, containerPort, protocol: 'tcp', ...(hostIP ? { hostIP } : {}) });

describe('portMappingsFrom (HostConfig.PortBindings → portMappings)', () => {
  it('no bindings, null or only exposed ports: no mappings', () => {
    for (const b of [undefined, null, {}, { '80/tcp': null }, { '80/tcp': [] }]) {
      assert.deepEqual(portMappingsFrom(b), { mappings: [], ignored: [] }, JSON.stringify(b));
    }
  });

  it('-p 8080:80: one tcp mapping without hostIP (Docker leaves HostIp empty)', () => {
    assert.deepEqual(portMappingsFrom({ '80/tcp': [{ HostIp: '', HostPort: '8080' }] }).mappings, [tcp(8080, 80)]);
  });

  it('each protocol; the protocol is lower-cased and tcp when the key has none', () => {
    const r = portMappingsFrom({
      '53/udp': [{ HostIp: '', HostPort: '5353' }],
      '53/tcp': [{ HostIp: '', HostPort: '5353' }],
      '9/SCTP': [{ HostPort: '9009' }],
      '22': [{ HostPort: '2222' }],
    });
    assert.deepEqual(r.mappings, [
      { hostPort: 9009, containerPort: 9, protocol: 'sctp' },
      { hostPort: 2222, containerPort: 22, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'tcp' },
      { hostPort: 5353, containerPort: 53, protocol: 'udp' },
    ]);
  });

  it('hostIP when set (IPv4, IPv6, with or without brackets, the unspecified ones kept: they pick the family)', () => {
    const r = portMappingsFrom({
      '80/tcp': [
        { HostIp: '127.0.0.1', HostPort: '8080' },
        { HostIp: '::1', HostPort: '8080' },
        { HostIp: '[fd00::5]', HostPort: '8081' },
        { HostIp: '0.0.0.0', HostPort: '8082' },
        { HostIp: '::', HostPort: '8082' },
      ],
    });
    assert.deepEqual(r.mappings, [tcp(8080, 80, '127.0.0.1'), tcp(8080, 80, '::1'), tcp(8081, 80, 'fd00::5'), tcp(8082, 80, '0.0.0.0'), tcp(8082, 80, '::')]);
  });

  it('several bindings of one port (e.g. two host ports for one container port)', () => {
    assert.deepEqual(portMappingsFrom({ '80/tcp': [{ HostPort: '8080' }, { HostPort: '9090' }] }).mappings, [tcp(8080, 80), tcp(9090, 80)]);
  });

  it('ranges: -p 8000-8002:80-82 as the CLI writes it (one key per port) and as a range key, expanded pairwise', () => {
    const expected = [tcp(8000, 80), tcp(8001, 81), tcp(8002, 82)];
    const cli = portMappingsFrom({ '80/tcp': [{ HostPort: '8000' }], '81/tcp': [{ HostPort: '8001' }], '82/tcp': [{ HostPort: '8002' }] });
    assert.deepEqual(cli.mappings, expected);
    assert.deepEqual(portMappingsFrom({ '80-82/tcp': [{ HostIp: '', HostPort: '8000-8002' }] }).mappings, expected);
    const udp = portMappingsFrom({ '5000-5001/udp': [{ HostIp: '10.0.0.1', HostPort: '6000-6001' }] }).mappings;
    assert.deepEqual(udp, [
      { hostPort: 6000, containerPort: 5000, protocol: 'udp', hostIP: '10.0.0.1' },
      { hostPort: 6001, containerPort: 5001, protocol: 'udp', hostIP: '10.0.0.1' },
    ]);
  });

  it('one container port and a host port range (Docker picks a free one): the first port of the range', () => {
    assert.deepEqual(portMappingsFrom({ '80/tcp': [{ HostPort: '8000-8010' }] }).mappings, [tcp(8000, 80)]);
  });

  it('no host port (-p 80, -P; Docker would pick an ephemeral port): ignored, with the reason', () => {
    const r = portMappingsFrom({ '80/tcp': [{ HostIp: '', HostPort: '' }], '81/tcp': [{ HostPort: '0' }], '82/tcp': [{}], '90/tcp': [{ HostPort: '9090' }] });
    assert.deepEqual(r.mappings, [tcp(9090, 90)]);
    assert.equal(r.ignored.length, 3);
    assert.match(r.ignored[0]!, /^80\/tcp: no host port/);
  });

  it('duplicates go; the order is stable whatever order the keys come in', () => {
    const a = portMappingsFrom({ '81/tcp': [{ HostPort: '8081' }], '80/tcp': [{ HostPort: '8080' }, { HostPort: '8080' }] });
    const b = portMappingsFrom({ '80/tcp': [{ HostPort: '8080' }], '81/tcp': [{ HostPort: '8081' }] });
    assert.deepEqual(a.mappings, [tcp(8080, 80), tcp(8081, 81)]);
    assert.deepEqual(a, b);
    // A range key and the same ports one by one make one list.
    assert.equal(portMappingsFrom({ '80-81/tcp': [{ HostPort: '8080-8081' }], '81/tcp': [{ HostPort: '8081' }] }).mappings.length, 2);
  });

  it('a numeric HostPort is taken as its text', () => {
    assert.deepEqual(portMappingsFrom({ '80/tcp': [{ HostPort: 8080 }] }).mappings, [tcp(8080, 80)]);
  });

  it('malformed bindings are errors saying what is wrong', () => {
    const cases: [unknown, RegExp][] = [
      [[], /PortBindings must be an object/],
      ['80:80', /PortBindings must be an object/],
      [{ '80/icmp': [{ HostPort: '1' }] }, /protocol "icmp" is not tcp, udp or sctp/],
      [{ 'x/tcp': [{ HostPort: '1' }] }, /"x" is not a port number/],
      [{ '0/tcp': [{ HostPort: '1' }] }, /"0" is not a port number/],
      [{ '80/tcp': [{ HostPort: '70000' }] }, /"70000" is not a port number/],
      [{ '80/tcp': [{ HostPort: '-1' }] }, /is not a port number/],
      [{ '82-80/tcp': [{ HostPort: '1' }] }, /ends before it starts/],
      [{ '80/tcp': { HostPort: '1' } }, /must be a list of bindings/],
      [{ '80/tcp': ['8080'] }, /a binding must be an object/],
      [{ '80/tcp': [{ HostPort: true }] }, /HostPort must be a string/],
      [{ '80/tcp': [{ HostIp: 5, HostPort: '1' }] }, /HostIp must be a string/],
      [{ '80/tcp': [{ HostIp: 'localhost', HostPort: '1' }] }, /HostIp "localhost" is not an IP address/],
      [{ '80-82/tcp': [{ HostPort: '8000-8001' }] }, /ranges of different lengths/],
      [{ '80-82/tcp': [{ HostPort: '8000' }] }, /ranges of different lengths/],
    ];
    for (const [b, re] of cases) assert.throws(() => portMappingsFrom(b), (e: Error) => e instanceof PortBindingsError && re.test(e.message), JSON.stringify(b));
  });
});

describe('portCapabilityArgs, asPortMappings, formatPortMappings', () => {
  it('capability args only when there are mappings', () => {
    assert.equal(portCapabilityArgs(undefined), undefined);
    assert.equal(portCapabilityArgs([]), undefined);
    assert.deepEqual(portCapabilityArgs([tcp(8080, 80)]), { portMappings: [tcp(8080, 80)] });
  });

  it('asPortMappings accepts what portMappingsFrom makes and nothing else', () => {
    const ms = portMappingsFrom({ '80/tcp': [{ HostIp: '::1', HostPort: '8080' }], '53/udp': [{ HostPort: '53' }] }).mappings;
    assert.deepEqual(asPortMappings(JSON.parse(JSON.stringify(ms))), ms);
    assert.deepEqual(asPortMappings([]), []);
    for (const bad of [undefined, {}, [1], [{ hostPort: 0, containerPort: 80, protocol: 'tcp' }], [{ hostPort: 1, containerPort: 80, protocol: 'icmp' }],
      [{ hostPort: 1, containerPort: 80, protocol: 'tcp', hostIP: 'x' }], [{ hostPort: '1', containerPort: 80, protocol: 'tcp' }]]) {
      assert.equal(asPortMappings(bad), undefined, JSON.stringify(bad));
    }
  });

  it('formats as Docker writes -p', () => {
    assert.equal(formatPortMappings([tcp(8080, 80), { hostPort: 53, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' }, tcp(8443, 443, '::1')]),
      '8080:80/tcp,127.0.0.1:53:53/udp,[::1]:8443:443/tcp');
  });
});

describe('where cniglue finds the bindings', () => {
  const bindings = { '80/tcp': [{ HostIp: '', HostPort: '8080' }], '53/udp': [{ HostIp: '127.0.0.1', HostPort: '5353' }] };
  const mappings = [{ hostPort: 5353, containerPort: 53, protocol: 'udp', hostIP: '127.0.0.1' }, tcp(8080, 80)];

  function hookFiles(hostConfig: unknown): Record<string, string> {
    const dir = tempDir('cglue-ports-hook-');
    fs.writeFileSync(path.join(dir, 'hostconfig.json'), JSON.stringify(hostConfig));
    fs.writeFileSync(path.join(dir, 'config.v2.json'), JSON.stringify({ ID, Config: { Labels: { 'io.rancher.cni.network': 'managed' } } }));
    return { DOCKER_HOST_CONFIG: path.join(dir, 'hostconfig.json'), DOCKER_CONFIG: path.join(dir, 'config.v2.json') };
  }
  const state = JSON.stringify({ ociVersion: '1.0.2', id: ID, pid: 42 });

  it('hook mode: hostconfig.json PortBindings, read in both phases', () => {
    const env = hookFiles({ NetworkMode: 'none', PortBindings: bindings });
    for (const phase of ['prestart', 'poststop'] as const) {
      const input = parseHookInput(state, env, phase);
      assert.deepEqual(portMappingsFrom(input.portBindings).mappings, mappings);
    }
    assert.equal('portBindings' in parseHookInput(state, hookFiles({ NetworkMode: 'none', PortBindings: null }), 'prestart'), false);
    assert.equal('portBindings' in parseHookInput(state, hookFiles({ NetworkMode: 'none' }), 'prestart'), false);
  });

  it('hook mode end to end (from source, fake plugins): ADD and DEL get them; a host-network container is skipped whatever its bindings', () => {
    const fakes = new FakePlugins().add('fake-bridge').add('fake-portmap');
    fakes.answer('fake-bridge', 'ADD', { cniVersion: '1.0.0', ips: [{ address: '10.42.0.9/16' }] });
    fakes.answer('fake-portmap', 'ADD', { cniVersion: '1.0.0', ips: [{ address: '10.42.0.9/16' }] });
    const confRoot = tempDir('cglue-ports-hookconf-');
    fs.mkdirSync(path.join(confRoot, 'managed.d'));
    fs.writeFileSync(path.join(confRoot, 'managed.d', '10-x.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'fake-bridge' }, { type: 'fake-portmap', capabilities: { portMappings: true } }],
    }));
    const hook = (phase: string, env: Record<string, string>, pid: number) => spawnSync(process.execPath, [path.join(ROOT, 'main.ts'), 'cniglue', phase,
      '--conf-root', confRoot, '--cni-path', `${fakes.binDir}:/usr/bin:/bin`, '--cache-dir', fakes.cacheDir], {
      input: JSON.stringify({ ociVersion: '1.0.2', id: ID, pid }), encoding: 'utf8', env: { PATH: process.env.PATH, FAKE_LOG: fakes.logDir, ...env }, timeout: 30_000,
    });
    const env = hookFiles({ NetworkMode: 'none', PortBindings: { ...bindings, '90/tcp': [{ HostPort: '' }] } });
    const pre = hook('prestart', env, process.pid);
    assert.equal(pre.status, 0, pre.stderr);
    assert.match(pre.stderr, /port binding 90\/tcp: no host port .*not published/);
    const post = hook('poststop', env, 0);
    assert.equal(post.status, 0, post.stderr);
    const calls = fakes.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['fake-bridge ADD', 'fake-portmap ADD', 'fake-portmap DEL', 'fake-bridge DEL']);
    for (const c of calls) assert.deepEqual(c.stdin.runtimeConfig, c.plugin === 'fake-portmap' ? { portMappings: mappings } : undefined, `${c.plugin} ${c.command}`);

    fakes.clearCalls();
    const broken = { '80/tcp': [{ HostPort: 'x' }] };
    const bad = hook('prestart', hookFiles({ NetworkMode: 'none', PortBindings: broken }), process.pid);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /DOCKER_HOST_CONFIG file .*hostconfig\.json: PortBindings "80\/tcp": HostPort: "x" is not a port number.*nothing was changed/);
    const hostMode = hook('prestart', hookFiles({ NetworkMode: 'host', PortBindings: broken }), process.pid);
    assert.equal(hostMode.status, 0, hostMode.stderr);
    assert.match(hostMode.stderr, /skipped/);
    assert.deepEqual(fakes.calls(), []);
  });

  it('watcher mode: docker inspect HostConfig.PortBindings', () => {
    const info = containerInfoFrom({ Id: ID, State: { Running: true, Pid: 5 }, HostConfig: { NetworkMode: 'none', PortBindings: bindings }, Config: {} });
    assert.deepEqual(portMappingsFrom(info.portBindings).mappings, mappings);
    const plain = containerInfoFrom({ Id: ID, HostConfig: { NetworkMode: 'none', PortBindings: null } });
    assert.equal(plain.portBindings, undefined);
  });

  it('the attachment record keeps them for the DEL of a later watcher; a broken list makes the record unusable', () => {
    const dir = tempDir('cglue-ports-state-');
    const record = { startedAt: '2024-01-01T00:00:00Z', network: 'managed', args: [['IgnoreUnknown', '1']] as [string, string][], portMappings: [tcp(8080, 80)] };
    writeAttachmentRecord(dir, ID, record);
    assert.deepEqual(readAttachmentRecord(dir, ID), record);
    const { portMappings: _, ...without } = record;
    writeAttachmentRecord(dir, ID, without);
    assert.deepEqual(readAttachmentRecord(dir, ID), without, 'records without ports (and of older versions) still read');
    fs.writeFileSync(path.join(dir, ID, RECORD_FILE), JSON.stringify({ ...record, portMappings: [{ hostPort: 'x' }] }));
    assert.equal(readAttachmentRecord(dir, ID), undefined);
  });
});

describe('glueAdd/glueDel send portMappings only to plugins that declare the capability', () => {
  let fakes: FakePlugins;
  let settings: GlueSettings;
  const savedLog = process.env.FAKE_LOG;

  before(() => {
    fakes = new FakePlugins().add('fake-bridge').add('fake-portmap').add('fake-other');
    fakes.answer('fake-bridge', 'ADD', { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/proc/1/ns/net' }], ips: [{ address: '10.42.0.9/16', interface: 0 }] });
    // Chained plugins pass the previous result on.
    fakes.answer('fake-portmap', 'ADD', { cniVersion: '1.0.0', ips: [{ address: '10.42.0.9/16' }] });
    fakes.answer('fake-other', 'ADD', { cniVersion: '1.0.0', ips: [{ address: '10.42.0.9/16' }] });
    const confRoot = tempDir('cglue-ports-conf-');
    fs.mkdirSync(path.join(confRoot, 'managed.d'));
    fs.writeFileSync(path.join(confRoot, 'managed.d', '10-ports.conflist'), JSON.stringify({
      cniVersion: '1.0.0', name: 'ports',
      plugins: [
        { type: 'fake-bridge' },
        { type: 'fake-portmap', capabilities: { portMappings: true } },
        { type: 'fake-other', capabilities: { portMappings: false, mac: true } },
      ],
    }));
    settings = { confRoot, cniPath: [fakes.binDir, '/usr/bin', '/bin'], // plugins get the plugin path as PATH
      cacheDir: fakes.cacheDir, pluginTimeoutMs: 30_000 };
    process.env.FAKE_LOG = fakes.logDir; // glue passes its own environment to the plugins
  });

  after(() => {
    if (savedLog === undefined) delete process.env.FAKE_LOG;
    else process.env.FAKE_LOG = savedLog;
  });

  const portMappings = [tcp(8080, 80), { hostPort: 5353, containerPort: 53, protocol: 'udp' as const, hostIP: '127.0.0.1' }];

  it('ADD: runtimeConfig.portMappings for the declaring plugin only; libcni caches the capability args', () => {
    fakes.clearCalls();
    glueAdd({ network: 'managed', containerId: ID, netns: `/proc/${process.pid}/ns/net`, args: [['IgnoreUnknown', '1']], portMappings }, settings);
    const calls = fakes.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['fake-bridge ADD', 'fake-portmap ADD', 'fake-other ADD']);
    assert.equal(calls[0]!.stdin.runtimeConfig, undefined);
    assert.deepEqual(calls[1]!.stdin.runtimeConfig, { portMappings });
    assert.equal(calls[2]!.stdin.runtimeConfig, undefined);
    const [entry] = listCacheEntries(fakes.cacheDir, ID);
    assert.deepEqual(entry!.capabilityArgs, { portMappings });
  });

  it('a container Docker forgot: the cache entry gives its ports back for the DEL', () => {
    assert.deepEqual(attachmentFromCache(ID, settings), { network: 'managed', args: [['IgnoreUnknown', '1']], portMappings });
  });

  it('DEL: the same, in reverse order', () => {
    fakes.clearCalls();
    glueDel({ network: 'managed', containerId: ID, netns: '', args: [['IgnoreUnknown', '1']], portMappings }, settings);
    const calls = fakes.calls();
    assert.deepEqual(calls.map((c) => `${c.plugin} ${c.command}`), ['fake-other DEL', 'fake-portmap DEL', 'fake-bridge DEL']);
    assert.equal(calls[0]!.stdin.runtimeConfig, undefined);
    assert.deepEqual(calls[1]!.stdin.runtimeConfig, { portMappings });
    assert.equal(calls[2]!.stdin.runtimeConfig, undefined);
    assert.deepEqual(listCacheEntries(fakes.cacheDir, ID), []);
  });

  it('no published ports: no runtimeConfig anywhere and none cached', () => {
    fakes.clearCalls();
    glueAdd({ network: 'managed', containerId: ID, netns: `/proc/${process.pid}/ns/net`, args: [] }, settings);
    for (const c of fakes.calls()) assert.equal(c.stdin.runtimeConfig, undefined, c.plugin);
    assert.deepEqual(listCacheEntries(fakes.cacheDir, ID)[0]!.capabilityArgs, {});
    assert.equal(attachmentFromCache(ID, settings)?.portMappings, undefined);
    glueDel({ network: 'managed', containerId: ID, netns: '', args: [] }, settings);
  });
});
