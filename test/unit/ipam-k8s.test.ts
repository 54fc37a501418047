// cattle-ipam and Kubernetes: a pod's record found by the labels
// io.kubernetes.pod.namespace/.name/.uid against CNI_ARGS K8S_POD_*, after the
// external_id/uuid match (containerd makes the sandbox id inside RunPodSandbox,
// so no record can carry it beforehand). Precedence, uid rules, waiting for
// the record with the long-poll, the timeout message, invalid records, and the
// in-process path a main plugin takes (lib/ipam.ts).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { describeTarget, matchOf } from '../../ipam/cattle/lookup.ts';
import { plugin } from '../../ipam/cattle/plugin.ts';
import { parseCniArgs } from '../../lib/cni/args.ts';
import type { Result } from '../../lib/cni/result.ts';
import { ipamAdd, registerInProcessIpam } from '../../lib/ipam.ts';
import type { CniRequest } from '../../lib/skel.ts';
import { main as metadataMain } from '../../metadata/main.ts';
import { createMetadataHandler } from '../../metadata/server.ts';
import {
  answersWith, BASE_ENV, ipamConf, runIpam, startFakeServer, startMetadata, type TestMetadata,
} from './metadata-fixtures.ts';

const SANDBOX = 'b7e1f00d4c0ffee0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718'; // unknown to metadata
const UID = '6f1c9a2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b';

/** CNI_ARGS as containerd sends them (go-cni WithLabels). */
function k8sArgs(ns: string | undefined, name: string | undefined, uid?: string, more = ''): string {
  const pairs = ['IgnoreUnknown=1'];
  if (ns !== undefined) pairs.push(`K8S_POD_NAMESPACE=${ns}`);
  if (name !== undefined) pairs.push(`K8S_POD_NAME=${name}`);
  pairs.push(`K8S_POD_INFRA_CONTAINER_ID=${SANDBOX}`);
  if (uid !== undefined) pairs.push(`K8S_POD_UID=${uid}`);
  return pairs.join(';') + more;
}

const podLabels = (ns: string, name: string, uid?: string): Record<string, string> => ({
  'io.kubernetes.pod.namespace': ns,
  'io.kubernetes.pod.name': name,
  ...(uid !== undefined ? { 'io.kubernetes.pod.uid': uid } : {}),
  'io.kubernetes.container.name': 'POD',
});

const podRecord = (ip: string, ns: string, name: string, uid?: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: `k8s_POD_${name}_${ns}`, uuid: `u-${ns}-${name}-${ip}`, primary_ip: ip, state: 'running', labels: podLabels(ns, name, uid), ...extra,
});

/** Serve `containers` once as 2015-12-19 answers; run one ADD with `args`; the address (or the error). */
async function addWith(containers: Record<string, unknown>[], args: string, opts: { timeout?: number; env?: Record<string, string> } = {}) {
  const m = await startMetadata(answersWith(containers));
  try {
    const r = await runIpam('ADD', ipamConf({ subnetPrefixSize: '/16', metadataAddress: m.address, timeout: opts.timeout ?? 5 }), {
      CNI_CONTAINERID: SANDBOX, CNI_ARGS: args, ...opts.env,
    });
    const ips = r.json?.ips as { address: string }[] | undefined;
    return { ...r, address: ips?.[0]?.address };
  } finally {
    await m.close();
  }
}

describe('matching rules (matchOf)', () => {
  const target = { containerId: 'cid', uuid: 'u-1', pod: { namespace: 'default', name: 'web-0', uid: UID } };
  it('ids first, then pod with the uid on both sides, then pod without it; a different uid is no match', () => {
    assert.deepEqual(matchOf({ external_id: 'cid', labels: podLabels('x', 'y') }, target), { rank: 3, by: 'external_id' });
    assert.deepEqual(matchOf({ uuid: 'u-1' }, target), { rank: 3, by: 'uuid' });
    assert.deepEqual(matchOf({ labels: podLabels('default', 'web-0', UID) }, target), { rank: 2, by: 'pod uid' });
    assert.deepEqual(matchOf({ labels: podLabels('default', 'web-0') }, target), { rank: 1, by: 'pod' });
    assert.deepEqual(matchOf({ labels: podLabels('default', 'web-0', '') }, target), { rank: 1, by: 'pod' });
    assert.equal(matchOf({ labels: podLabels('default', 'web-0', 'another-uid') }, target), undefined);
    // The record's uid counts only when the runtime passed one.
    assert.deepEqual(matchOf({ labels: podLabels('default', 'web-0', 'any') }, { containerId: 'cid', pod: { namespace: 'default', name: 'web-0' } }), { rank: 1, by: 'pod' });
  });

  it('namespace and name both, exactly, from labels that are an object', () => {
    assert.equal(matchOf({ labels: podLabels('kube-system', 'web-0') }, target), undefined);
    assert.equal(matchOf({ labels: podLabels('default', 'web-00') }, target), undefined);
    assert.equal(matchOf({ labels: { 'io.kubernetes.pod.name': 'web-0' } }, target), undefined);
    assert.equal(matchOf({ labels: ['io.kubernetes.pod.namespace', 'default'] }, target), undefined);
    assert.equal(matchOf({ labels: null }, target), undefined);
    assert.equal(matchOf({ name: 'web-0' }, target), undefined);
    // Without K8S_POD_* the labels are never looked at.
    assert.equal(matchOf({ labels: podLabels('default', 'web-0') }, { containerId: 'cid' }), undefined);
    assert.equal(matchOf({ labels: podLabels('', '') }, { containerId: 'cid', pod: { namespace: '', name: '' } }), undefined);
  });

  it('describeTarget names every key tried', () => {
    assert.equal(describeTarget({ containerId: 'cid' }), 'external_id cid');
    assert.equal(describeTarget({ containerId: 'cid', uuid: 'u' }), 'external_id cid or uuid u');
    assert.equal(describeTarget({ containerId: 'cid', pod: { namespace: 'default', name: 'web-0' } }), 'external_id cid or pod default/web-0');
    assert.equal(describeTarget(target), `external_id cid, uuid u-1 or pod default/web-0 (uid ${UID})`);
  });
});

describe('ADD of a Kubernetes pod', () => {
  it('finds the record by pod namespace and name when the sandbox id is unknown to metadata', async () => {
    const r = await addWith([podRecord('10.42.7.1', 'other', 'web-0'), podRecord('10.42.7.2', 'default', 'web-0', undefined, { dns: ['169.254.169.250'] })], k8sArgs('default', 'web-0', UID));
    assert.equal(r.code, 0, r.stdout);
    assert.equal(r.address, '10.42.7.2/16');
    assert.deepEqual(r.json?.dns, { nameservers: ['169.254.169.250'] });
  });

  it('the external_id and uuid matches come first, wherever the pod record is in the list', async () => {
    const pod = podRecord('10.42.7.1', 'default', 'web-0', UID);
    const byId = await addWith([pod, { name: 'sandbox', uuid: 'u-sb', external_id: SANDBOX, primary_ip: '10.42.7.9' }], k8sArgs('default', 'web-0', UID));
    assert.equal(byId.address, '10.42.7.9/16', byId.stdout);
    const byUuid = await addWith([pod, { name: 'r', uuid: 'u-rancher', external_id: 'other', primary_ip: '10.42.7.8' }], k8sArgs('default', 'web-0', UID, ';RancherContainerUUID=u-rancher'));
    assert.equal(byUuid.address, '10.42.7.8/16', byUuid.stdout);
    // An id-named record without an address yet does not hide the pod record.
    const noIp = await addWith([{ external_id: SANDBOX, primary_ip: '' }, pod], k8sArgs('default', 'web-0', UID));
    assert.equal(noIp.address, '10.42.7.1/16', noIp.stdout);
  });

  it('the uid: a record with the same uid wins over one without; a different uid never matches', async () => {
    const same = await addWith([podRecord('10.42.7.1', 'default', 'web-0'), podRecord('10.42.7.2', 'default', 'web-0', UID)], k8sArgs('default', 'web-0', UID));
    assert.equal(same.address, '10.42.7.2/16', same.stdout);
    const withoutUid = await addWith([podRecord('10.42.7.3', 'default', 'web-0', 'old-pod-uid'), podRecord('10.42.7.4', 'default', 'web-0')], k8sArgs('default', 'web-0', UID));
    assert.equal(withoutUid.address, '10.42.7.4/16', withoutUid.stdout);
    const mismatch = await addWith([podRecord('10.42.7.3', 'default', 'web-0', 'old-pod-uid')], k8sArgs('default', 'web-0', UID), { timeout: 0.3 });
    assert.equal(mismatch.json?.code, 11, mismatch.stdout);
    // No uid in CNI_ARGS: the record's uid is not compared.
    const noArgUid = await addWith([podRecord('10.42.7.3', 'default', 'web-0', 'old-pod-uid')], k8sArgs('default', 'web-0'));
    assert.equal(noArgUid.address, '10.42.7.3/16', noArgUid.stdout);
  });

  it('needs both K8S_POD_NAMESPACE and K8S_POD_NAME; a record without primary_ip does not match', async () => {
    const records = [podRecord('10.42.7.1', 'default', 'web-0')];
    for (const args of [k8sArgs(undefined, 'web-0'), k8sArgs('default', undefined), k8sArgs('default', '')]) {
      const r = await addWith(records, args, { timeout: 0.3 });
      assert.equal(r.json?.code, 11, `${args}: ${r.stdout}`);
      assert.doesNotMatch(String(r.json?.msg), /pod/, args);
    }
    const noIp = await addWith([podRecord('', 'default', 'web-0')], k8sArgs('default', 'web-0'), { timeout: 0.3 });
    assert.equal(noIp.json?.code, 11, noIp.stdout);
  });

  it('a record that never appears: code 11 naming external_id, uuid and pod', async () => {
    const r = await addWith([podRecord('10.42.7.1', 'default', 'web-1')], k8sArgs('default', 'web-0', UID, ';RancherContainerUUID=u-none'), { timeout: 0.5 });
    assert.equal(r.json?.code, 11, r.stdout);
    assert.match(String(r.json?.msg), new RegExp(`^no container with external_id ${SANDBOX}, uuid u-none or pod default/web-0 \\(uid ${UID}\\) and a primary_ip in http://127\\.0\\.0\\.1:\\d+/2015-12-19/containers after [\\d.]+ s$`));
    assert.match(String(r.json?.details), /never appeared/);
  });

  it('invalid data: in the pod record, code 7 at once; unless an id-named record follows, which wins', async () => {
    const bad = podRecord('10.42.7.300', 'default', 'web-0');
    const r = await addWith([bad], k8sArgs('default', 'web-0'));
    assert.equal(r.json?.code, 7, r.stdout);
    assert.match(String(r.json?.msg), /invalid field "primary_ip" in the metadata record of container u-default-web-0-10\.42\.7\.300 \(name k8s_POD_web-0_default\)/);
    const schema = await addWith([podRecord('10.42.7.1', 'default', 'web-0', undefined, { dns: 5 })], k8sArgs('default', 'web-0'));
    assert.equal(schema.json?.code, 7, schema.stdout);
    const won = await addWith([bad, { external_id: SANDBOX, primary_ip: '10.42.7.9' }], k8sArgs('default', 'web-0'));
    assert.equal(won.address, '10.42.7.9/16', won.stdout);
    // Another pod's broken record is not ours.
    const other = await addWith([podRecord('nope', 'default', 'web-1'), podRecord('10.42.7.1', 'default', 'web-0')], k8sArgs('default', 'web-0'));
    assert.equal(other.address, '10.42.7.1/16', other.stdout);
  });

  it('waits for the pod record with the long-poll; cattle-metadata add-container --pod-* publishes it', async () => {
    const m = await startMetadata(answersWith([]));
    const requests: string[] = [];
    let sawWait: () => void = () => {};
    const waiting = new Promise<void>((resolve) => (sawWait = resolve));
    // A second front door to the same answers that notes the long-poll.
    const handler = createMetadataHandler({ store: m.store, xff: false });
    const fake = await startFakeServer((req, res) => {
      requests.push(req.url ?? '');
      if (/\/version\?wait=true/.test(req.url ?? '')) sawWait();
      handler(req, res);
    });
    try {
      const run = runIpam('ADD', ipamConf({ subnetPrefixSize: '/16', metadataAddress: fake.address, timeout: 30 }), {
        CNI_CONTAINERID: SANDBOX, CNI_ARGS: k8sArgs('default', 'web-0', UID),
      });
      await waiting;
      let out = '';
      const code = await metadataMain(['add-container', '--answers', m.file, '--pod-namespace', 'default', '--pod-name', 'web-0', '--pod-uid', UID, '--ip', '10.42.8.1'],
        { out: (s) => (out += s), err: (s) => (out += s) });
      assert.equal(code, 0, out);
      const r = await run;
      assert.equal(r.code, 0, r.stdout);
      assert.deepEqual(r.json?.ips, [{ address: '10.42.8.1/16', gateway: '10.42.0.1' }]);
      const waits = requests.filter((u) => u.includes('wait=true')).length;
      assert.ok(waits >= 1, requests.join(' '));
    } finally {
      await fake.close();
      await m.close();
    }
  });
});

describe('the in-process path (a main plugin calling cattle-ipam through lib/ipam.ts)', () => {
  let m: TestMetadata;
  before(async () => {
    m = await startMetadata(answersWith([podRecord('10.42.9.5', 'default', 'web-0', UID, { primary_mac_address: '02:42:0A:2A:09:05' })]));
    registerInProcessIpam('cattle-ipam', async () => plugin);
  });
  after(async () => m.close());

  it('passes CNI_ARGS through: the pod record, its MAC in interfaces', async () => {
    const rawArgs = k8sArgs('default', 'web-0', UID);
    const req: CniRequest = {
      command: 'ADD', containerId: SANDBOX, netns: '/var/run/netns/cni-test', ifname: 'eth0', args: parseCniArgs(rawArgs), rawArgs, path: [],
      config: { cniVersion: '1.1.0', name: 'k8s-pod-network', type: 'cattle-bridge', ipam: { type: 'cattle-ipam', metadataAddress: m.address } },
      stdin: Buffer.alloc(0), env: { ...BASE_ENV, CNI_CONTAINERID: SANDBOX, CNI_ARGS: rawArgs },
    };
    const result: Result = await ipamAdd(req);
    assert.deepEqual(result.ips, [{ address: '10.42.9.5/16', gateway: '10.42.0.1' }]);
    assert.deepEqual(result.interfaces, [{ name: 'eth0', mac: '02:42:0a:2a:09:05' }]);
  });
});
