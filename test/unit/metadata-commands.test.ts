// The commands that edit an environment file (add-/remove-host, -network,
// -container) and the classic answers file: what they write, what they refuse,
// their exit statuses, YAML comments kept, edits never lost to each other.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import type { Obj } from '../../metadata/answers.ts';
import { checkEnvironment, parseEnvironmentText } from '../../metadata/environment.ts';
import {
  addEnvironmentContainer, addHost, addNetwork, removeEnvironmentContainer, removeHost, removeNetwork,
} from '../../metadata/environment-edit.ts';
import { main } from '../../metadata/main.ts';
import { tempDir } from './metadata-fixtures.ts';

const dir = tempDir();
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let n = 0;
const fresh = (ext = 'yaml'): string => path.join(dir, `env-${++n}.${ext}`);

async function read(file: string) {
  const { data, problems } = await parseEnvironmentText(fs.readFileSync(file, 'utf8'), file);
  return { ...checkEnvironment(data), shapeProblems: problems };
}

const CNI = { '10-rancher.conf': { type: 'rancher-bridge', bridge: 'docker0', bridgeSubnet: '10.42.0.0/16' } };

/** Run the CLI in-process: exit status, stdout, stderr. */
async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { out: (s) => (stdout += s), err: (s) => (stderr += s) });
  return { code, stdout, stderr };
}

/** An environment with two hosts and a default network, made by the commands. */
async function twoHosts(ext = 'yaml'): Promise<string> {
  const file = fresh(ext);
  await addHost(file, { uuid: 'h-a', name: 'host-a', agentIp: '192.0.2.11', labels: { zone: 'a' } });
  await addHost(file, { uuid: 'h-b', name: 'host-b', agentIp: '192.0.2.12' });
  await addNetwork(file, { uuid: 'n-1', name: 'managed', isDefault: true, cniConfig: CNI });
  return file;
}

describe('add-host / remove-host', () => {
  it('creates the file (YAML with a header comment, or JSON) and adds hosts', async () => {
    for (const ext of ['yaml', 'json']) {
      const file = await twoHosts(ext);
      const env = await read(file);
      assert.deepEqual(env.problems, []);
      assert.deepEqual(env.hosts.map((h) => [h.uuid, h.name, h.hostname, h.agent_ip, h.state]), [
        ['h-a', 'host-a', 'host-a', '192.0.2.11', 'active'], ['h-b', 'host-b', 'host-b', '192.0.2.12', 'active'],
      ]);
      assert.deepEqual(env.hosts[0]!.labels, { zone: 'a' });
      const text = fs.readFileSync(file, 'utf8');
      if (ext === 'yaml') assert.match(text, /^# cattle-metadata environment/);
      else assert.doesNotThrow(() => JSON.parse(text));
    }
  });

  it('replaces by uuid, or by name keeping the uuid; a random uuid when none is given', async () => {
    const file = await twoHosts();
    await addHost(file, { uuid: 'h-a', name: 'host-a2', agentIp: '192.0.2.21' });
    const same = await addHost(file, { name: 'host-b', agentIp: '192.0.2.22' });
    assert.equal(same.uuid, 'h-b');
    const made = await addHost(file, { name: 'host-c', agentIp: '192.0.2.23' });
    assert.match(made.uuid as string, /^[0-9a-f-]{36}$/);
    const env = await read(file);
    assert.deepEqual(env.hosts.map((h) => [h.uuid, h.name, h.agent_ip]), [['h-a', 'host-a2', '192.0.2.21'], ['h-b', 'host-b', '192.0.2.22'], [made.uuid, 'host-c', '192.0.2.23']]);
  });

  it('refuses an agent_ip or a name another host has', async () => {
    const file = await twoHosts();
    await assert.rejects(addHost(file, { uuid: 'h-c', name: 'host-c', agentIp: '192.0.2.11' }), /agent_ip 192\.0\.2\.11 is already the address of host host-a \(h-a\)/);
    await assert.rejects(addHost(file, { uuid: 'h-c', name: 'host-a', agentIp: '192.0.2.13' }), /a host named "host-a" already exists \(h-a\): give its --uuid/);
  });

  it('remove-host: refused while containers are on it, unless with them; unknown host fails', async () => {
    const file = await twoHosts();
    await addEnvironmentContainer(file, { externalId: 'e1', ip: '10.42.0.5', hostUuid: 'h-a' });
    await assert.rejects(removeHost(file, { name: 'host-a' }), /host named "host-a" has 1 container\(s\) \(.+\): remove them first, or pass --with-containers/);
    assert.deepEqual(await removeHost(file, { uuid: 'h-b' }), { removed: 1, containers: 0 });
    assert.deepEqual(await removeHost(file, { uuid: 'h-a' }, { withContainers: true }), { removed: 1, containers: 1 });
    const env = await read(file);
    assert.deepEqual([env.hosts.length, env.containers.length], [0, 0]);
    await assert.rejects(removeHost(file, { uuid: 'h-a' }), /no host with uuid "h-a" in /);
    await assert.rejects(removeHost(file, {}), /say which host to remove/);
  });
});

describe('add-network / remove-network', () => {
  it('stores cniConfig as metadata.cniConfig; a new default network undefaults the others', async () => {
    const file = await twoHosts();
    const r = await addNetwork(file, { uuid: 'n-2', name: 'other', isDefault: true, hostPorts: true, policyAction: 'deny' });
    assert.deepEqual(r.undefaulted, ['n-1']);
    const env = await read(file);
    assert.deepEqual(env.networks.map((x) => [x.uuid, x.is_default, x.host_ports, x.default_policy_action]), [['n-1', false, false, 'allow'], ['n-2', true, true, 'deny']]);
    assert.deepEqual((env.networks[0]!.metadata as Obj).cniConfig, CNI);
    assert.deepEqual(env.networks[1]!.metadata, {});
  });

  it('remove-network: refused while containers are on it; replaced by name keeps the uuid', async () => {
    const file = await twoHosts('json');
    await addEnvironmentContainer(file, { externalId: 'e1', ip: '10.42.0.5', hostUuid: 'h-a' });
    await assert.rejects(removeNetwork(file, { uuid: 'n-1' }), /network with uuid "n-1" has 1 container/);
    const again = await addNetwork(file, { name: 'managed', cniConfig: CNI });
    assert.equal(again.network.uuid, 'n-1');
    assert.deepEqual(await removeNetwork(file, { name: 'managed' }, { withContainers: true }), { removed: 1, containers: 1 });
    await assert.rejects(addNetwork(file, { uuid: 'n-x', name: 'dup' }).then(() => addNetwork(file, { uuid: 'n-y', name: 'dup' })), /a network named "dup" already exists \(n-x\)/);
  });
});

describe('add-container / remove-container on an environment', () => {
  it('resolves the host by uuid or name, takes the default network, replaces by external id', async () => {
    const file = await twoHosts();
    const c = await addEnvironmentContainer(file, { externalId: 'abcdef0123456789', ip: '10.42.0.5/16', hostUuid: 'host-b', mac: '02:00:0A:2A:00:05', state: 'starting' });
    assert.deepEqual([c.host_uuid, c.network_uuid, c.primary_ip, c.primary_mac_address, c.state, c.name], ['h-b', 'n-1', '10.42.0.5', '02:00:0a:2a:00:05', 'starting', 'r-abcdef012345']);
    await addNetwork(file, { uuid: 'n-2', name: 'other' });
    const moved = await addEnvironmentContainer(file, { externalId: 'abcdef0123456789', ip: '10.42.0.6', hostUuid: 'h-a', networkUuid: 'other', uuid: c.uuid as string });
    assert.deepEqual([moved.uuid, moved.host_uuid, moved.network_uuid], [c.uuid, 'h-a', 'n-2']);
    const env = await read(file);
    assert.equal(env.containers.length, 1);
    assert.deepEqual(env.problems, []);
  });

  it('refuses an unknown host or network and an address another container has on the network', async () => {
    const file = await twoHosts();
    await assert.rejects(addEnvironmentContainer(file, { externalId: 'e', ip: '10.42.0.5', hostUuid: 'nope' }), /--host-uuid nope: no host has the uuid or name "nope" \(hosts: h-a \(host-a\), h-b \(host-b\)\)/);
    await assert.rejects(addEnvironmentContainer(file, { externalId: 'e', ip: '10.42.0.5', hostUuid: 'h-a', networkUuid: 'n-9' }), /--network-uuid n-9: no network has that uuid or name \(networks: n-1 \(managed\)\)/);
    await addEnvironmentContainer(file, { externalId: 'e1', ip: '10.42.0.5', hostUuid: 'h-a', name: 'one' });
    await assert.rejects(addEnvironmentContainer(file, { externalId: 'e2', ip: '10.42.0.5', hostUuid: 'h-b' }), /10\.42\.0\.5 is already the primary_ip of container one \(.+\) on that network: remove it first/);
    assert.equal(await removeEnvironmentContainer(file, { name: 'one' }), 1);
    assert.equal(await removeEnvironmentContainer(file, { name: 'one' }), 0);
    await assert.rejects(removeEnvironmentContainer(file, {}), /say which container to remove/);
  });

  it('keeps the comments and layout of a hand-written YAML file', async () => {
    const file = fresh();
    fs.writeFileSync(file, [
      '# my environment',
      'hosts:',
      '  # the first host',
      '  - uuid: h-a   # keep me',
      '    agent_ip: 192.0.2.11',
      'networks: []',
      'containers: []',
      '',
    ].join('\n'));
    await addEnvironmentContainer(file, { externalId: 'e1', ip: '10.42.0.5', hostUuid: 'h-a', uuid: 'c-1' });
    await addNetwork(file, { uuid: 'n-1', name: 'managed' });
    const text = fs.readFileSync(file, 'utf8');
    assert.match(text, /^# my environment\nhosts:\n {2}# the first host\n {2}- uuid: h-a {1,3}# keep me\n {4}agent_ip: 192\.0\.2\.11\n/);
    assert.match(text, /\ncontainers:\n {2}- name: r-e1\n {4}uuid: c-1\n/);
    assert.match(text, /\nnetworks:\n {2}- uuid: n-1\n/);
    assert.equal((await read(file)).containers.length, 1);
  });

  it('a file that cannot be read is not touched', async () => {
    const file = fresh();
    fs.writeFileSync(file, 'hosts: [\n');
    await assert.rejects(addHost(file, { name: 'h', agentIp: '192.0.2.1' }), /invalid YAML/);
    assert.equal(fs.readFileSync(file, 'utf8'), 'hosts: [\n');
    const json = fresh('json');
    fs.writeFileSync(json, '{"2015-12-19": {"default": {}}}');
    await assert.rejects(addHost(json, { name: 'h', agentIp: '192.0.2.1' }), /classic answers file/);
  });

  it('edits made at once are all kept (they take turns)', async () => {
    const file = await twoHosts();
    await Promise.all(Array.from({ length: 12 }, (_, i) => addEnvironmentContainer(file, { externalId: `e${i}`, ip: `10.42.1.${i + 1}`, hostUuid: i % 2 ? 'h-a' : 'h-b' })));
    assert.equal((await read(file)).containers.length, 12);
  });
});

describe('the CLI', () => {
  it('add-host, add-network, add-container, remove-*: JSON on stdout, exit 0', async () => {
    const file = fresh();
    const h = await cli('add-host', '--environment', file, '--name', 'host-a', '--agent-ip', '192.0.2.11', '--uuid', 'h-a', '--label', 'a=b=c', '--label', 'empty=');
    assert.equal(h.code, 0, h.stderr);
    assert.deepEqual((JSON.parse(h.stdout) as Obj).labels, { a: 'b=c', empty: '' });
    const net = await cli('add-network', '--environment', file, '--name', 'managed', '--uuid', 'n-1', '--default', `--cni-config=${JSON.stringify(CNI)}`);
    assert.equal(net.code, 0, net.stderr);
    const cniFile = path.join(dir, 'cni.json');
    fs.writeFileSync(cniFile, JSON.stringify(CNI));
    const net2 = await cli('add-network', '--environment', file, '--name', 'second', '--default', '--cni-config', `@${cniFile}`);
    assert.equal(net2.code, 0, net2.stderr);
    assert.match(net2.stderr, /network n-1 is no longer the default network/);
    const c = await cli('add-container', '--environment', file, '--host-uuid', 'host-a', '--network-uuid', 'managed', '--external-id', 'e1', '--ip', '10.42.0.5', '--state', 'stopped', '--label', 'io.rancher.stack.name=web');
    assert.equal(c.code, 0, c.stderr);
    const rec = JSON.parse(c.stdout) as Obj;
    assert.deepEqual([rec.host_uuid, rec.network_uuid, rec.state, rec.labels], ['h-a', 'n-1', 'stopped', { 'io.rancher.stack.name': 'web' }]);
    const rmHost = await cli('remove-host', '--environment', file, '--name', 'host-a');
    assert.equal(rmHost.code, 1);
    assert.match(rmHost.stderr, /has 1 container\(s\)/);
    assert.deepEqual(await cli('remove-container', '--environment', file, '--external-id', 'e1'), { code: 0, stdout: 'removed 1 record(s)\n', stderr: '' });
    assert.equal((await cli('remove-container', '--environment', file, '--external-id', 'e1')).code, 1);
    assert.deepEqual(await cli('remove-host', '--environment', file, '--uuid', 'h-a'), { code: 0, stdout: 'removed 1 host(s)\n', stderr: '' });
    assert.deepEqual(await cli('remove-network', '--environment', file, '--name', 'second'), { code: 0, stdout: 'removed 1 network(s)\n', stderr: '' });
  });

  it('classic add-container keeps working and takes --host-uuid, --network-uuid, --state as fields', async () => {
    const file = path.join(dir, 'answers.json');
    const c = await cli('add-container', '--answers', file, '--external-id', 'e1', '--ip', '10.42.0.5', '--host-uuid', 'h-x', '--network-uuid', 'n-x', '--state', 'starting');
    assert.equal(c.code, 0, c.stderr);
    const answers = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, { default: { containers: Obj[] } }>;
    const [rec] = answers['2015-12-19']!.default.containers;
    assert.deepEqual([rec!.host_uuid, rec!.network_uuid, rec!.state], ['h-x', 'n-x', 'starting']);
    assert.equal((await cli('remove-container', '--answers', file, '--external-id', 'e1')).code, 0);
  });

  it('usage errors exit 2 and say what is wrong; failures exit 1', async () => {
    const file = fresh();
    const usage: [string[], RegExp][] = [
      [['add-host', '--environment', file, '--name', 'h', '--agent-ip', '2001:db8::1'], /--agent-ip: not an IPv4 address: 2001:db8::1/],
      [['add-host', '--environment', file, '--name', 'h', '--agent-ip', '192.0.2.256'], /--agent-ip: not an IPv4 address/],
      [['add-host', '--environment', file, '--agent-ip', '192.0.2.1'], /--name is required/],
      [['add-host', '--environment', file, '--name', 'a/b', '--agent-ip', '192.0.2.1'], /--name must not contain "\/"/],
      [['add-host', '--environment', file, '--name', 'h', '--agent-ip', '192.0.2.1', '--label', 'novalue'], /--label: expected KEY=VALUE, got "novalue"/],
      [['add-host', '--answers', file, '--name', 'h', '--agent-ip', '192.0.2.1'], /--answers is not an option of add-host/],
      [['add-host', '--name', 'h', '--agent-ip', '192.0.2.1'], /--environment is required/],
      [['add-network', '--environment', file, '--name', 'n', '--cni-config', '{'], /--cni-config: invalid JSON/],
      [['add-network', '--environment', file, '--name', 'n', '--cni-config', '{"type": "rancher-bridge"}'], /--cni-config "type" must be a CNI config object/],
      [['add-network', '--environment', file, '--name', 'n', '--cni-config', '{"a.conf": {"bridgeSubnet": "10.42.0.0/33"}}'], /bridgeSubnet must be a CIDR/],
      [['add-network', '--environment', file, '--name', 'n', '--cni-config', '@/nonexistent/cni.json'], /--cni-config @\/nonexistent\/cni\.json: cannot read/],
      [['add-network', '--environment', file, '--name', 'n', '--policy-action', 'drop'], /--policy-action: drop: expected allow or deny/],
      [['add-container', '--environment', file, '--external-id', 'e', '--ip', '10.42.0.5'], /--host-uuid is required/],
      [['add-container', '--environment', file, '--host-uuid', 'h', '--external-id', 'e', '--ip', '10.42.0.5', '--state', 'up'], /--state: not a container state: up/],
      [['add-container', '--answers', file, '--environment', file, '--external-id', 'e', '--ip', '10.42.0.5'], /give --answers or --environment, not both/],
      [['add-container', '--environment', file, '--host-uuid', 'h', '--external-id', 'e', '--ip', '10.42.0.5', '--ip', '10.42.0.6'], /--ip given twice/],
      [['remove-host', '--environment', file], /say which host to remove: --uuid or --name/],
      [['remove-network', '--environment', file, '--uuid', 'a', '--name', 'b'], /give --uuid or --name, not both/],
      [['serve', '--answers', file, '--self-host', 'h'], /--self-host needs --environment/],
      [['serve', '--environment', file, '--xff', '--with-containers'], /--with-containers is not an option of serve/],
      [['serve'], /--answers or --environment is required/],
      [['frobnicate'], /unknown command "frobnicate"/],
    ];
    for (const [args, re] of usage) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
    const failed = await cli('add-container', '--environment', file, '--host-uuid', 'h', '--external-id', 'e', '--ip', '10.42.0.5');
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /--host-uuid h: no host has the uuid or name "h" \(hosts: none\)/);
    assert.equal(fs.existsSync(file), false, 'a failed command writes nothing');
  });
});

describe('add-container for a Kubernetes pod (--pod-namespace, --pod-name, --pod-uid)', () => {
  const POD = ['--pod-namespace', 'default', '--pod-name', 'web-0'];
  const labelsOf = (uid?: string) => ({ 'io.kubernetes.pod.namespace': 'default', 'io.kubernetes.pod.name': 'web-0', ...(uid ? { 'io.kubernetes.pod.uid': uid } : {}) });

  it('an environment: the pod labels, no external_id, a uuid and name from the pod; published again, replaced', async () => {
    const file = await twoHosts();
    const first = await cli('add-container', '--environment', file, '--host-uuid', 'h-a', ...POD, '--pod-uid', 'uid-1', '--ip', '10.42.0.5', '--label', 'app=web');
    assert.equal(first.code, 0, first.stderr);
    const rec = JSON.parse(first.stdout) as Obj;
    assert.deepEqual(rec.labels, { app: 'web', ...labelsOf('uid-1') });
    assert.equal(rec.name, 'k8s_POD_web-0_default');
    assert.match(rec.uuid as string, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal('external_id' in rec, false);
    // Another pod, then the first one again (recreated: a new uid and address): it replaces its record.
    assert.equal((await cli('add-container', '--environment', file, '--host-uuid', 'h-a', '--pod-namespace', 'default', '--pod-name', 'web-1', '--ip', '10.42.0.6')).code, 0);
    const again = await cli('add-container', '--environment', file, '--host-uuid', 'h-b', ...POD, '--pod-uid', 'uid-2', '--ip', '10.42.0.7');
    assert.equal(again.code, 0, again.stderr);
    assert.equal((JSON.parse(again.stdout) as Obj).uuid, rec.uuid);
    const env = await read(file);
    assert.deepEqual(env.problems, []);
    assert.deepEqual(env.containers.map((c) => [c.name, c.primary_ip, c.external_id, (c.labels as Record<string, string>)['io.kubernetes.pod.uid']]), [
      ['k8s_POD_web-0_default', '10.42.0.7', undefined, 'uid-2'], ['k8s_POD_web-1_default', '10.42.0.6', undefined, undefined],
    ]);
    // With an external id too, and an explicit uuid and name: those are kept (and it is another record).
    const both = await cli('add-container', '--environment', file, '--host-uuid', 'h-a', ...POD, '--external-id', 'sandbox0123456789', '--uuid', 'c-9', '--name', 'web', '--ip', '10.42.0.8');
    assert.equal(both.code, 0, both.stderr);
    assert.deepEqual(Object.fromEntries(Object.entries(JSON.parse(both.stdout) as Obj).filter(([k]) => ['uuid', 'name', 'external_id', 'labels'].includes(k))),
      { uuid: 'c-9', name: 'web', external_id: 'sandbox0123456789', labels: labelsOf() });
    assert.deepEqual(await cli('remove-container', '--environment', file, '--name', 'k8s_POD_web-1_default'), { code: 0, stdout: 'removed 1 record(s)\n', stderr: '' });
  });

  it('classic answers: every version gets the record; published again, replaced, other records kept', async () => {
    const file = path.join(dir, 'pod-answers.json');
    assert.equal((await cli('add-container', '--answers', file, '--external-id', 'e1', '--ip', '10.42.0.4')).code, 0);
    assert.equal((await cli('add-container', '--answers', file, ...POD, '--ip', '10.42.0.5')).code, 0);
    const r = await cli('add-container', '--answers', file, ...POD, '--pod-uid', 'uid-2', '--ip', '10.42.0.6');
    assert.equal(r.code, 0, r.stderr);
    const answers = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, { default: { containers: Obj[] } }>;
    for (const v of Object.values(answers)) {
      assert.deepEqual(v.default.containers.map((c) => [c.external_id, c.primary_ip, c.labels]), [['e1', '10.42.0.4', {}], [undefined, '10.42.0.6', labelsOf('uid-2')]]);
    }
  });

  it('usage errors: the pair goes together, --pod-uid needs it, one of --external-id or the pod is needed', async () => {
    const file = fresh();
    const usage: [string[], RegExp][] = [
      [['add-container', '--environment', file, '--host-uuid', 'h', '--pod-name', 'web-0', '--ip', '10.42.0.5'], /--pod-namespace and --pod-name go together/],
      [['add-container', '--environment', file, '--host-uuid', 'h', '--pod-namespace', 'default', '--ip', '10.42.0.5'], /--pod-namespace and --pod-name go together/],
      [['add-container', '--environment', file, '--host-uuid', 'h', '--external-id', 'e', '--pod-uid', 'u', '--ip', '10.42.0.5'], /--pod-uid needs --pod-namespace and --pod-name/],
      [['add-container', '--environment', file, '--host-uuid', 'h', '--ip', '10.42.0.5'], /--external-id is required \(or --pod-namespace and --pod-name\)/],
      [['add-container', '--environment', file, '--host-uuid', 'h', '--pod-namespace', 'a/b', '--pod-name', 'web-0', '--ip', '10.42.0.5'], /--pod-namespace must not contain "\/"/],
      [['add-container', '--environment', file, '--host-uuid', 'h', ...POD, '--external-id', '', '--ip', '10.42.0.5'], /--external-id is required/],
      [['remove-container', '--environment', file, ...POD], /--pod-namespace is not an option of remove-container \(it is one of add-container\)/],
    ];
    for (const [args, re] of usage) {
      const r = await cli(...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re, args.join(' '));
    }
    assert.equal(fs.existsSync(file), false);
  });
});
