// Environment descriptions: what each API version answers (hosts, networks,
// containers, services, stacks, self per host and per container), the
// defaults filled in, invalid entries left out and reported, and the store
// serving one file as two different hosts over HTTP.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { AnswersError, type Obj, prepareAnswers } from '../../metadata/answers.ts';
import {
  checkEnvironment, checkEnvironmentData, deriveAnswers, environmentAnswers, type EnvironmentData, findHost, parseEnvironmentText,
} from '../../metadata/environment.ts';
import { addEnvironmentContainer } from '../../metadata/environment-edit.ts';
import { get, sleep, startEnvironmentMetadata, tempDir } from './metadata-fixtures.ts';

const EXAMPLE = path.resolve(import.meta.dirname, '..', '..', 'conf-examples', 'metadata', 'environment.yaml');
const JSON_ACCEPT = { Accept: 'application/json' };

const HOST_A = { uuid: 'h-a', name: 'host-a', agent_ip: '192.0.2.11' };
const HOST_B = { uuid: 'h-b', name: 'host-b', hostname: 'b.example', agent_ip: '192.0.2.12', labels: { zone: 'b' } };
const MANAGED = {
  uuid: 'n-1', name: 'managed', is_default: true,
  metadata: { cniConfig: { '10-rancher.conf': { type: 'rancher-bridge', bridge: 'docker0', bridgeSubnet: '10.42.0.0/16' } } },
};

function data(d: Partial<EnvironmentData>): EnvironmentData {
  return { environment: {}, hosts: [], networks: [], containers: [], stacks: [], services: [], ...d };
}

/** The served tree of `client` (default when omitted), as the server shows it. */
function tree(d: Partial<EnvironmentData>, version: string, selfHost?: string, client = 'default'): Obj {
  const { answers } = deriveAnswers(checkEnvironment(data(d)), selfHost);
  const served = prepareAnswers(answers, '7');
  return served[version]![client] ?? served[version]!.default!;
}

describe('deriving answers from an environment', () => {
  it('the example file has no problems and answers as each host', async () => {
    const text = fs.readFileSync(EXAMPLE, 'utf8');
    const a = await environmentAnswers(text, EXAMPLE, 'host-a');
    assert.deepEqual(a.warnings, []);
    const b = await environmentAnswers(text, EXAMPLE, '0f2c5cde-3b1e-4a1f-9a62-6a3c9e1d0a02');
    for (const version of ['2015-12-19', '2016-07-29']) {
      const ta = a.answers[version]!.default!;
      const tb = b.answers[version]!.default!;
      assert.equal((ta.self as Obj & { host: Obj }).host.name, 'host-a');
      assert.equal((tb.self as Obj & { host: Obj }).host.name, 'host-b');
      assert.equal((tb.self as Obj & { host: Obj }).host.agent_ip, '192.0.2.12');
      assert.deepEqual(ta.hosts, tb.hosts);
      assert.deepEqual(ta.containers, tb.containers);
      assert.equal((ta.containers as Obj[]).length, 3);
      const [net] = ta.networks as Obj[];
      assert.equal(((net!.metadata as Obj).cniConfig as Obj & Record<string, Obj>)['10-rancher.conf']!.bridgeSubnet, '10.42.0.0/16');
    }
  });

  it("the README's example reads without problems", async () => {
    const readme = fs.readFileSync(path.resolve(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('**Environment description**'));
    const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
    const r = await environmentAnswers(yaml, 'readme.yaml', 'host-b');
    assert.deepEqual(r.warnings, []);
    const t = r.answers['2016-07-29']!;
    assert.equal(((t.default!.self as Obj).host as Obj).agent_ip, '192.0.2.12');
    assert.equal(((t['10.42.0.11']!.self as Obj).host as Obj).uuid, 'h-a');
  });

  it('hosts, networks and containers get Rancher defaults; extra fields pass through', () => {
    const t = tree({
      environment: { uuid: 'env-1', name: 'Default' },
      hosts: [HOST_A, { ...HOST_B, memory: 2048, custom: { x: 1 } }],
      networks: [MANAGED, { uuid: 'n-host', name: 'host' }],
      containers: [{ uuid: 'c-1', external_id: 'abcdef0123456789', primary_ip: '10.42.0.5', host_uuid: 'h-a', network_uuid: 'n-1', primary_mac_address: '02:00:0A:2A:00:05' }],
    }, '2016-07-29', 'host-a');
    assert.deepEqual(t.hosts, [
      { uuid: 'h-a', name: 'host-a', agent_ip: '192.0.2.11', hostname: 'host-a', labels: {}, state: 'active', environment_uuid: 'env-1' },
      { uuid: 'h-b', name: 'host-b', hostname: 'b.example', agent_ip: '192.0.2.12', labels: { zone: 'b' }, memory: 2048, custom: { x: 1 }, state: 'active', environment_uuid: 'env-1' },
    ]);
    assert.deepEqual((t.networks as Obj[])[1], {
      uuid: 'n-host', name: 'host', metadata: {}, is_default: false, host_ports: false, default_policy_action: 'allow', environment_uuid: 'env-1',
    });
    assert.deepEqual(t.containers, [{
      uuid: 'c-1', external_id: 'abcdef0123456789', primary_ip: '10.42.0.5', host_uuid: 'h-a', network_uuid: 'n-1', primary_mac_address: '02:00:0a:2a:00:05',
      name: 'r-abcdef012345', ips: ['10.42.0.5'], state: 'running', labels: {}, ports: [], environment_uuid: 'env-1', environment_name: 'Default',
    }]);
    assert.deepEqual(Object.keys(t).sort(), ['containers', 'hosts', 'networks', 'self', 'services', 'stacks', 'version']);
    assert.equal(t.version, '7');
  });

  it('self is the --self-host (uuid, name or hostname) in every version; without one there is no self', () => {
    const d = { hosts: [HOST_A, HOST_B] };
    for (const version of ['2015-07-25', '2015-12-19', '2016-07-29']) {
      assert.equal(((tree(d, version, 'h-a').self as Obj).host as Obj).uuid, 'h-a');
      assert.equal(((tree(d, version, 'host-b').self as Obj).host as Obj).uuid, 'h-b');
      assert.equal(((tree(d, version, 'b.example').self as Obj).host as Obj).uuid, 'h-b');
    }
    assert.equal(tree(d, '2016-07-29').self, undefined);
    const missing = deriveAnswers(checkEnvironment(data(d)), 'host-z');
    assert.equal(missing.answers['2016-07-29']!.default!.self, undefined);
    assert.match(missing.problems[0]!, /--self-host host-z: no host has the uuid or name "host-z"; \/self\/host is not answered/);
    const twins = [HOST_A, { ...HOST_B, name: 'host-a' }];
    assert.match((findHost(checkEnvironment(data({ hosts: twins })).hosts, 'host-a') as { error: string }).error, /2 hosts are named "host-a" \(h-a, h-b\): give the uuid/);
    assert.equal((findHost(checkEnvironment(data({ hosts: twins })).hosts, 'h-b') as { host: Obj }).host.uuid, 'h-b');
  });

  it('each container address answers self as that container, its host, service and stack', () => {
    const d = {
      hosts: [HOST_A, HOST_B],
      containers: [
        { uuid: 'c-1', name: 'Web-1', primary_ip: '10.42.0.5', host_uuid: 'h-b', stack_name: 'Web', service_name: 'Front' },
        { uuid: 'c-old', name: 'old', primary_ip: '10.42.0.6', host_uuid: 'h-a', state: 'stopped' },
        { uuid: 'c-new', name: 'new', primary_ip: '10.42.0.6', host_uuid: 'h-a', state: 'running' },
        { uuid: 'c-noip', name: 'noip', host_uuid: 'h-a' },
      ],
    };
    const me = tree(d, '2016-07-29', 'host-a', '10.42.0.5');
    const self = me.self as Record<string, Obj>;
    assert.equal(self.container!.uuid, 'c-1');
    assert.equal(self.host!.uuid, 'h-b');
    assert.equal(self.service!.name, 'front');
    assert.equal(self.stack!.name, 'web');
    assert.equal((me.containers as Obj[]).length, 4); // the defaults too
    assert.equal(((tree(d, '2016-07-29', 'host-a', '10.42.0.6').self as Obj).container as Obj).uuid, 'c-new');
    const { answers } = deriveAnswers(checkEnvironment(data(d)), 'host-a');
    assert.deepEqual(Object.keys(answers['2015-12-19']!).sort(), ['10.42.0.5', '10.42.0.6', 'default']);
  });

  it('2016-07-29 lowercases names and binds ports to 0.0.0.0; earlier versions keep names and bind to the host', () => {
    const d = {
      hosts: [HOST_A],
      containers: [{ uuid: 'c-1', name: 'Web-1', stack_name: 'Web', service_name: 'Front', primary_ip: '10.42.0.5', host_uuid: 'h-a', ports: ['8080:80/tcp', '0.0.0.0:53:53/udp', '10.0.0.1:22:22/tcp'] }],
    };
    const v3 = (tree(d, '2016-07-29').containers as Obj[])[0]!;
    assert.deepEqual([v3.name, v3.stack_name, v3.service_name], ['web-1', 'web', 'front']);
    assert.deepEqual(v3.ports, ['0.0.0.0:8080:80/tcp', '0.0.0.0:53:53/udp', '10.0.0.1:22:22/tcp']);
    const v2 = (tree(d, '2015-12-19').containers as Obj[])[0]!;
    assert.deepEqual([v2.name, v2.stack_name, v2.service_name], ['Web-1', 'Web', 'Front']);
    assert.deepEqual(v2.ports, ['192.0.2.11:8080:80/tcp', '192.0.2.11:53:53/udp', '10.0.0.1:22:22/tcp']);
  });

  it('services and stacks: declared or derived from the containers; 2015-07-25 lists members by name', () => {
    const d = {
      hosts: [HOST_A],
      stacks: [{ name: 'web', uuid: 's-web' }],
      services: [{ name: 'front', stack_name: 'web', uuid: 'svc-front', metadata: { a: 1 } }],
      containers: [
        { uuid: 'c-1', name: 'web-1', stack_name: 'web', service_name: 'front', host_uuid: 'h-a' },
        { uuid: 'c-2', name: 'db-1', stack_name: 'data', service_name: 'db', host_uuid: 'h-a' },
      ],
    };
    const t = tree(d, '2015-12-19');
    const [front, db] = t.services as Obj[];
    assert.equal(front!.uuid, 'svc-front');
    assert.equal(front!.stack_uuid, 's-web');
    assert.equal(front!.scale, 1);
    assert.deepEqual(front!.metadata, { a: 1 });
    assert.deepEqual((front!.containers as Obj[]).map((c) => c.uuid), ['c-1']);
    assert.deepEqual(db, { name: 'db', stack_name: 'data', kind: 'service', labels: {}, scale: 1, containers: [(t.containers as Obj[])[1]] });
    const c1 = (t.containers as Obj[])[0]!;
    assert.deepEqual([c1.service_uuid, c1.stack_uuid], ['svc-front', 's-web']);
    assert.deepEqual((t.stacks as Obj[]).map((s) => [s.name, (s.services as Obj[]).map((x) => x.name)]), [['web', ['front']], ['data', ['db']]]);
    const v1 = tree(d, '2015-07-25');
    assert.deepEqual((v1.services as Obj[])[0]!.containers, ['web-1']);
    assert.deepEqual((v1.stacks as Obj[])[0]!.services, ['front']);
  });

  it('each version gets its own copies: lowercasing 2016-07-29 leaves 2015-12-19 alone', () => {
    const env = checkEnvironment(data({ containers: [{ uuid: 'c', name: 'UP' }] }));
    const { answers } = deriveAnswers(env);
    assert.equal((answers['2016-07-29']!.default!.containers as Obj[])[0]!.name, 'up');
    assert.equal((answers['2015-12-19']!.default!.containers as Obj[])[0]!.name, 'UP');
    assert.equal(env.containers[0]!.name, 'UP');
  });
});

describe('invalid environments', () => {
  it('entries that are not valid are left out and reported; the rest is served', () => {
    const env = checkEnvironment(data({
      hosts: [
        HOST_A, 'host-x', { name: 'no-uuid', agent_ip: '192.0.2.1' }, { uuid: 'h-6', agent_ip: '2001:db8::1' }, { uuid: 'h-bad', agent_ip: 'x' },
        { uuid: 'h-noip' }, { ...HOST_A, name: 'again' }, { uuid: 'h-same-ip', agent_ip: '192.0.2.11' }, { uuid: 'h-lbl', agent_ip: '192.0.2.20', labels: ['a'] },
        { uuid: 'h-mem', agent_ip: '192.0.2.21', memory: '2G' }, { uuid: 'a/b', agent_ip: '192.0.2.22' },
        { uuid: 'h-ok', agent_ip: '192.0.2.23', labels: { version: 1.9, on: true, none: null } },
      ],
      networks: [
        MANAGED, { uuid: 'n-cni', metadata: { cniConfig: 'x' } }, { uuid: 'n-sub', metadata: { cniConfig: { 'a.conf': { bridgeSubnet: '10.42.0.0' } } } },
        { uuid: 'n-pol', default_policy_action: 'drop' }, { uuid: 'n-def', is_default: 'yes' },
      ],
      containers: [
        { uuid: 'c-ok', primary_ip: '10.42.0.5', host_uuid: 'h-a', network_uuid: 'n-1' },
        { uuid: 'c-ip', primary_ip: '10.42.0' }, { uuid: 'c-mac', primary_mac_address: 'zz' }, { uuid: 'c-ips', ips: ['10.42.0.9', 'nope'] },
        { primary_ip: '10.42.0.7' }, { uuid: 'c-ok' }, { uuid: 'c-orphan', host_uuid: 'h-gone', network_uuid: 'n-gone', network_from_container_uuid: 'c-gone' },
        { uuid: 'c-state', state: ['running'] },
      ],
    }));
    assert.deepEqual(env.hosts.map((h) => h.uuid), ['h-a', 'h-ok']);
    assert.deepEqual(env.hosts[1]!.labels, { version: '1.9', on: 'true', none: '' });
    assert.deepEqual(env.networks.map((n) => n.uuid), ['n-1']);
    assert.deepEqual(env.containers.map((c) => c.uuid), ['c-ok', 'c-orphan']);
    const expected = [
      /^hosts\[1\] left out: not an object$/,
      /^hosts\[2\] \(no-uuid\) left out: uuid is required$/,
      /^hosts\[3\] \(h-6\) left out: agent_ip is not an IPv4 address: 2001:db8::1$/,
      /^hosts\[4\] \(h-bad\) left out: agent_ip is not an IPv4 address: x$/,
      /^hosts\[5\] \(h-noip\) left out: agent_ip is required$/,
      /^hosts\[8\] \(h-lbl\) left out: labels must be an object of strings$/,
      /^hosts\[9\] \(h-mem\) left out: memory must be an integer$/,
      /^hosts\[10\] \(a\/b\) left out: uuid must not contain "\/"$/,
      /^hosts: uuid "h-a" repeated, the later entry left out$/,
      /^hosts: agent_ip "192\.0\.2\.11" repeated, the later entry left out$/,
      /^networks\[1\] \(n-cni\) left out: metadata\.cniConfig must be an object of file name → CNI config/,
      /^networks\[2\] \(n-sub\) left out: metadata\.cniConfig "a\.conf"\.bridgeSubnet must be a CIDR/,
      /^networks\[3\] \(n-pol\) left out: default_policy_action must be allow or deny$/,
      /^networks\[4\] \(n-def\) left out: is_default must be true or false$/,
      /^containers\[1\] \(c-ip\) left out: primary_ip is not an IP address: 10\.42\.0$/,
      /^containers\[2\] \(c-mac\) left out: primary_mac_address is not a MAC address: zz$/,
      /^containers\[3\] \(c-ips\) left out: ips: not an IP address: nope$/,
      /^containers\[4\] left out: uuid is required$/,
      /^containers\[7\] \(c-state\) left out: state must be a string$/,
      /^containers: uuid "c-ok" repeated, the later entry left out$/,
      /^containers: c-orphan: host_uuid "h-gone" is not one of the hosts$/,
      /^containers: c-orphan: network_uuid "n-gone" is not one of the networks$/,
      /^containers: c-orphan: network_from_container_uuid "c-gone" is not one of the containers$/,
    ];
    assert.equal(env.problems.length, expected.length, env.problems.join('\n'));
    expected.forEach((re, i) => assert.match(env.problems[i]!, re));
  });

  it('more than one default network, unknown keys, derived lists given: reported, served', async () => {
    const text = JSON.stringify({
      hosts: [], networks: [MANAGED, { ...MANAGED, uuid: 'n-2' }], extra: 1,
      services: [{ name: 's', stack_name: 'st', containers: ['x'] }], stacks: [{ name: 'st', services: ['y'] }],
    });
    const r = await environmentAnswers(text, 'env.json');
    assert.deepEqual(r.warnings, [
      'unknown key "extra" ignored (expected environment, hosts, networks, containers, stacks, services)',
      'networks: 2 networks are is_default (n-1, n-2); Rancher has one',
      'stacks: st: services are derived from the services and containers, the list given is ignored',
      'services: s: containers are derived from the containers\' service_name, the list given is ignored',
    ]);
    assert.deepEqual((r.answers['2016-07-29']!.default!.services as Obj[])[0]!.containers, []);
  });

  it('a file that is not an environment is refused, naming the file and the problem', async () => {
    assert.throws(() => checkEnvironmentData([], 'e.json'), /e\.json: an environment must be an object with hosts, networks and containers lists/);
    assert.throws(() => checkEnvironmentData({ hosts: {} }, 'e.json'), /e\.json: hosts must be a list/);
    assert.throws(() => checkEnvironmentData({ environment: 'x' }, 'e.json'), /environment must be an object/);
    assert.throws(() => checkEnvironmentData({ '2015-12-19': { default: {} } }, 'e.json'), (e: Error) => e instanceof AnswersError && /classic answers file .*--answers/.test(e.message));
    await assert.rejects(parseEnvironmentText('{', 'e.json'), /e\.json: invalid JSON/);
    await assert.rejects(parseEnvironmentText('hosts: [1,', 'e.yaml'), /e\.yaml: invalid YAML: line 1/);
    // Empty files are empty environments.
    assert.deepEqual((await parseEnvironmentText('', 'e.json')).data.hosts, []);
    assert.deepEqual((await parseEnvironmentText('# nothing yet\n', 'e.yaml')).data.containers, []);
  });
});

describe('serving one environment file as two hosts', () => {
  const dir = tempDir();
  const file = path.join(dir, 'env.yaml');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('each server answers self/host as its host; a change wakes long-polls on both; bad edits are survived', async () => {
    fs.copyFileSync(EXAMPLE, file);
    const a = await startEnvironmentMetadata(file, 'host-a');
    const b = await startEnvironmentMetadata(file, 'host-b');
    try {
      const selfA = JSON.parse((await get(a.url, '/2016-07-29/self/host', JSON_ACCEPT)).body) as Obj;
      const selfB = JSON.parse((await get(b.url, '/2016-07-29/self/host', JSON_ACCEPT)).body) as Obj;
      assert.deepEqual([selfA.name, selfA.agent_ip, selfB.name, selfB.agent_ip], ['host-a', '192.0.2.11', 'host-b', '192.0.2.12']);
      assert.equal((await get(b.url, '/2015-12-19/self/host/name')).body, 'host-b');
      assert.equal((await get(a.url, '/latest/self/host/uuid')).body, '0f2c5cde-3b1e-4a1f-9a62-6a3c9e1d0a01');
      assert.equal((await get(a.url, '/2016-07-29/hosts', JSON_ACCEPT)).body, (await get(b.url, '/2016-07-29/hosts', JSON_ACCEPT)).body);
      assert.equal((await get(a.url, '/2016-07-29/networks/managed/metadata/cniConfig/10-rancher.conf/bridgeSubnet')).body, '10.42.0.0/16');
      // Go's client unmarshals /version as a JSON string.
      const va = JSON.parse((await get(a.url, '/2016-07-29/version', JSON_ACCEPT)).body) as unknown;
      const vb = JSON.parse((await get(b.url, '/2016-07-29/version', JSON_ACCEPT)).body) as unknown;
      assert.equal(typeof va, 'string');

      const waitA = get(a.url, `/2016-07-29/version?wait=true&value=${String(va)}&maxWait=10`, JSON_ACCEPT);
      const waitB = get(b.url, `/2016-07-29/version?wait=true&value=${String(vb)}&maxWait=10`, JSON_ACCEPT);
      await sleep(50);
      await addEnvironmentContainer(file, { externalId: 'new0123456789', ip: '10.42.0.31', hostUuid: 'host-b', name: 'new-1' });
      assert.notEqual(JSON.parse((await waitA).body), va);
      assert.notEqual(JSON.parse((await waitB).body), vb);
      for (const s of [a, b]) {
        const c = JSON.parse((await get(s.url, '/2016-07-29/containers/new-1', JSON_ACCEPT)).body) as Obj;
        assert.deepEqual([c.host_uuid, c.network_uuid, c.state], ['0f2c5cde-3b1e-4a1f-9a62-6a3c9e1d0a02', '7d4f0e2a-managed', 'running']);
      }

      // A hand edit with a bad entry: the rest is served, the problem reported.
      const good = fs.readFileSync(file, 'utf8');
      fs.writeFileSync(file, good.replace('agent_ip: 192.0.2.12', 'agent_ip: 192.0.2.300'));
      assert.equal((await get(b.reloadUrl, '', {}, 'POST')).status, 200);
      assert.equal((await get(b.url, '/2016-07-29/hosts', JSON_ACCEPT)).body.includes('host-b'), false);
      assert.equal((await get(b.url, '/2016-07-29/self/host')).status, 404);
      assert.match(b.warnings().join('\n'), /hosts\[1\] \(0f2c5cde-3b1e-4a1f-9a62-6a3c9e1d0a02\) left out: agent_ip is not an IPv4 address: 192\.0\.2\.300/);
      assert.match(b.warnings().join('\n'), /--self-host host-b: no host has the uuid or name "host-b"/);
      // A broken file: the previous answers stay.
      const before = (await get(a.url, '/2016-07-29/version')).body;
      fs.writeFileSync(file, 'hosts: [');
      const r = await get(a.reloadUrl, '', {}, 'POST');
      assert.equal(r.status, 500);
      assert.match(r.body, /env\.yaml: invalid YAML/);
      assert.equal((await get(a.url, '/2016-07-29/version')).body, before);
      assert.equal((await get(a.url, '/2016-07-29/self/host/name')).body, 'host-a');
      fs.writeFileSync(file, good);
      assert.equal((await get(b.reloadUrl, '', {}, 'POST')).status, 200);
      assert.equal((await get(b.url, '/2016-07-29/self/host/name')).body, 'host-b');
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
