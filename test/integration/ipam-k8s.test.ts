// A Kubernetes pod networked by the built cattle-bridge + cattle-ipam (in-process)
// exactly as containerd does it: a sandbox id metadata has never heard of,
// CNI_ARGS with K8S_POD_* as go-cni sends them, runtimeConfig for the
// capabilities the conflist's plugin declares (portMappings, bandwidth,
// ipRanges, in go-cni's JSON), the address from a record that
// `cattle-metadata add-container --pod-namespace … --pod-name …` published:
// before the ADD, and after the ADD started (picked up by the long-poll). Then
// DEL leaves nothing. The built cattle-metadata and a request-logging front
// door run in the test's host netns; every process is stopped by PID.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { assertOk, type Attach, cni, cniAsync, links, ping, tempDir, vethNames } from '../helpers/cni.ts';
import { baseEnv, BIN, makeNetns, runExe, type TestNetns, trackPid, untrackPid } from '../helpers/harness.ts';
import { diffSnapshots, formatDiff, isClean, type Snapshot, snapshot } from '../helpers/leftovers.ts';

const dir = tempDir('ccni-k8s-');
const answers = path.join(dir, 'answers.json');
const stateDir = path.join(dir, 'state');
const lockDir = path.join(dir, 'locks');
const ipamLog = path.join(dir, 'ipam.log');

interface Proc {
  child: ChildProcess;
  /** Lines printed so far on stdout. */
  lines: string[];
  /** Resolves with the first stdout line that matches. */
  line(re: RegExp): Promise<string>;
  stderr(): string;
  stop(): Promise<void>;
}

/** Start argv inside `ns` (ip netns exec execs it: the PID is the program's), tracked for cleanup. */
function start(ns: TestNetns, argv: string[]): Proc {
  const child = spawn('ip', ['netns', 'exec', ns.name, ...argv], { env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  trackPid(child.pid);
  const lines: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  let partial = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  child.stdout!.on('data', (c: Buffer) => {
    const parts = (partial + c.toString()).split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiters.filter((x) => x.re.test(l))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.on('exit', () => {
    untrackPid(child.pid);
    resolve();
  }));
  return {
    child,
    lines,
    line: (re) => {
      const had = lines.find((l) => re.test(l));
      if (had !== undefined) return Promise.resolve(had);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${argv[0]}: no line matching ${re} within 20 s; stderr: ${err}`)), 20_000);
        waiters.push({ re, resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        } });
      });
    },
    stderr: () => err,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

// A front door in the host netns that prints each request's URL, then forwards it (long-polls too).
const FRONT_DOOR = `
import http from 'node:http';
const [host, port] = process.argv[2].split(':');
const server = http.createServer((req, res) => {
  process.stdout.write(JSON.stringify({ url: req.url }) + '\\n');
  const up = http.request({ host, port: Number(port), path: req.url, method: req.method, headers: req.headers, agent: false }, (r) => {
    res.writeHead(r.statusCode, r.headers);
    r.pipe(res);
  });
  up.on('error', () => res.destroy());
  res.on('close', () => up.destroy());
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ listening: '127.0.0.1:' + server.address().port }) + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

let host: TestNetns;
let metadata: Proc;
let frontDoor: Proc;
let frontDoorAddress: string;

before(async () => {
  fs.mkdirSync(stateDir);
  fs.mkdirSync(lockDir);
  fs.writeFileSync(answers, JSON.stringify({ '2015-12-19': { default: { containers: [] } } }));
  host = makeNetns('ccni-k8s-host');
  metadata = start(host, [path.join(BIN, 'cattle-metadata'), 'serve', '--answers', answers, '--listen', '127.0.0.1:0', '--reload-listen', 'none']);
  const listening = (JSON.parse(await metadata.line(/"listening"/)) as { listening: string }).listening;
  const script = path.join(dir, 'front-door.mjs');
  fs.writeFileSync(script, FRONT_DOOR);
  frontDoor = start(host, [process.execPath, script, listening]);
  frontDoorAddress = (JSON.parse(await frontDoor.line(/"listening"/)) as { listening: string }).listening;
});

after(async () => {
  await frontDoor?.stop();
  await metadata?.stop();
  host?.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The network list as installed in /etc/cni/net.d: the plugin declares the capabilities containerd fills in. */
function conflist() {
  return {
    cniVersion: '1.0.0',
    name: 'k8s-pod-network',
    plugins: [{
      type: 'cattle-bridge',
      bridge: 'cni0',
      isGateway: true,
      isDefaultGateway: true,
      mtu: 1500,
      ipam: { type: 'cattle-ipam', subnetPrefixSize: '/16', metadataAddress: frontDoorAddress, timeout: 30, logToFile: ipamLog, isDebugLevel: true },
      capabilities: { portMappings: true, bandwidth: true, ipRanges: true },
    }],
  };
}

/**
 * What libcni hands the plugin: the plugin's config with the list's name and cniVersion, and
 * runtimeConfig for each declared capability containerd passed. go-cni's types carry no JSON tags,
 * so its PortMapping, BandWidth and IPRanges arrive with Go's field names.
 */
function pluginConf(): Record<string, unknown> {
  const list = conflist();
  const plugin = list.plugins[0]!;
  const capabilityArgs: Record<string, unknown> = {
    portMappings: [{ HostPort: 8080, ContainerPort: 80, Protocol: 'tcp', HostIP: '' }, { HostPort: 5353, ContainerPort: 53, Protocol: 'udp', HostIP: '127.0.0.1' }],
    bandwidth: { IngressRate: 1_000_000, IngressBurst: 2_000_000, EgressRate: 1_000_000, EgressBurst: 2_000_000 },
    // The node's pod CIDR: for host-local; cattle-ipam takes cattle's address, not one from here.
    ipRanges: [[{ Subnet: '10.88.0.0/16', RangeStart: '', RangeEnd: '', Gateway: '' }]],
    'io.kubernetes.cri.pod-annotations': { 'example.com/undeclared': 'not passed' },
  };
  const runtimeConfig = Object.fromEntries(Object.entries(capabilityArgs).filter(([k]) => (plugin.capabilities as Record<string, boolean>)[k] === true));
  return { ...plugin, name: list.name, cniVersion: list.cniVersion, runtimeConfig };
}

interface Pod {
  namespace: string;
  name: string;
  uid: string;
  sandbox: string;
  ip: string;
  mac: string;
  ns: TestNetns;
}

function newPod(name: string, ip: string, mac: string): Pod {
  return { namespace: 'default', name, uid: crypto.randomUUID(), sandbox: crypto.randomBytes(32).toString('hex'), ip, mac, ns: makeNetns('cni-k8s') };
}

/** containerd's RunPodSandbox → go-cni Setup: CNI_ARGS from WithLabels, in this order. */
function attach(pod: Pod): Attach {
  return {
    plugin: 'cattle-bridge',
    host,
    conf: pluginConf(),
    containerId: pod.sandbox,
    netns: pod.ns.path,
    ifname: 'eth0',
    args: `IgnoreUnknown=1;K8S_POD_NAMESPACE=${pod.namespace};K8S_POD_NAME=${pod.name};K8S_POD_INFRA_CONTAINER_ID=${pod.sandbox};K8S_POD_UID=${pod.uid}`,
    extraEnv: { CATTLE_CNI_STATE_DIR: stateDir, CATTLE_CNI_LOCK_DIR: lockDir },
  };
}

/** What cattle's side does: publish the pod's record by namespace/name; the server reloads the file. */
function publish(pod: Pod, extra: string[] = []): void {
  const r = runExe('cattle-metadata', {
    args: ['add-container', '--answers', answers, '--pod-namespace', pod.namespace, '--pod-name', pod.name, '--pod-uid', pod.uid, '--ip', pod.ip, '--mac', pod.mac, ...extra],
  });
  assert.equal(r.code, 0, r.stderr);
}

function snap(pods: Pod[]): Promise<Snapshot> {
  return snapshot(host, { pods: pods.map((p) => p.ns), dirs: { state: stateDir, lock: lockDir } });
}

interface AddResult {
  interfaces: { name: string; mac: string; sandbox?: string }[];
  ips: { address: string; gateway: string; interface: number }[];
  routes: { dst: string; gw: string }[];
}

/** The ADD result, and the pod's eth0 as the kernel has it. */
function assertNetworked(pod: Pod, r: { json?: unknown }): void {
  const res = r.json as AddResult;
  assert.deepEqual(res.ips, [{ address: `${pod.ip}/16`, gateway: '10.42.0.1', interface: 2 }]);
  assert.deepEqual(res.routes, [{ dst: '0.0.0.0/0', gw: '10.42.0.1' }]);
  assert.equal(res.interfaces[2]!.name, 'eth0');
  assert.equal(res.interfaces[2]!.mac, pod.mac);
  assert.equal(res.interfaces[2]!.sandbox, pod.ns.path);
  const eth0 = links(pod.ns).find((l) => l.ifname === 'eth0');
  assert.equal(eth0?.address, pod.mac);
  const addrs = pod.ns.ipJson<{ addr_info: { local: string; prefixlen: number }[] }[]>('-4', 'addr', 'show', 'dev', 'eth0')[0]!.addr_info.map((a) => `${a.local}/${a.prefixlen}`);
  assert.deepEqual(addrs, [`${pod.ip}/16`]);
}

/** Let the front door's last lines (written before the plugin exited) be read. */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 20));
}

/** The ipam debug log's "record found" lines for this sandbox. */
function found(pod: Pod): Record<string, unknown>[] {
  const text = fs.existsSync(ipamLog) ? fs.readFileSync(ipamLog, 'utf8') : '';
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.containerId === pod.sandbox && l.step === 'metadata record found');
}

describe('a Kubernetes pod through cattle-bridge + cattle-ipam, as containerd runs them', () => {
  const pods: Pod[] = [];
  let base: Snapshot;

  before(async () => {
    pods.push(newPod('web-0', '10.42.60.10', '02:42:0a:2a:3c:0a'), newPod('web-1', '10.42.60.11', '02:42:0a:2a:3c:0b'));
    base = await snap(pods);
  });

  it('record published before the ADD: found by pod labels, not by the (unknown) sandbox id', async () => {
    const pod = pods[0]!;
    // Another pod of the same name in another namespace is not this one.
    publish({ ...pod, namespace: 'staging', uid: crypto.randomUUID(), ip: '10.42.60.99', mac: '02:42:0a:2a:3c:63' });
    publish(pod);
    const mark = frontDoor.lines.length;
    const r = await cniAsync('ADD', attach(pod));
    assertOk(r);
    assertNetworked(pod, r);
    assert.ok(ping(pod.ns, '10.42.0.1'), 'the pod pings its gateway (the bridge)');
    await settle();
    // One look at the list found it: no waiting.
    assert.deepEqual(frontDoor.lines.slice(mark).map((l) => (JSON.parse(l) as { url: string }).url), ['/2015-12-19/containers']);
    assert.deepEqual(found(pod).map((l) => [l.by, l.changes]), [['pod uid', 0]]);
  });

  it('record published after the ADD started: the long-poll picks it up', async () => {
    const pod = pods[1]!;
    const mark = frontDoor.lines.length;
    const adding = cniAsync('ADD', attach(pod));
    // The plugin looked, found nothing, and now waits for the next metadata change.
    await frontDoor.line(/"url":"\/2015-12-19\/version\?wait=true/);
    publish(pod);
    const r = await adding;
    assertOk(r);
    assertNetworked(pod, r);
    await settle();
    const urls = frontDoor.lines.slice(mark).map((l) => (JSON.parse(l) as { url: string }).url.replace(/\?.*/, '?…'));
    assert.deepEqual(urls, ['/2015-12-19/containers', '/2015-12-19/version', '/2015-12-19/containers', '/2015-12-19/version?…', '/2015-12-19/containers']);
    assert.deepEqual(found(pod).map((l) => [l.by, l.changes]), [['pod uid', 1]]);
    assert.ok(ping(pod.ns, pods[0]!.ip), 'web-1 pings web-0');
  });

  it('DEL (as containerd sends it, twice) leaves nothing but the bridge', async () => {
    for (const pod of pods) {
      assertOk(cni('DEL', attach(pod)));
      assertOk(cni('DEL', attach(pod)));
    }
    assert.deepEqual(vethNames(host), []);
    const d = diffSnapshots(base, await snap(pods), { kinds: ['bridge'], files: [/^lock:bridge-cni0$/] });
    assert.ok(isClean(d), formatDiff(d));
    for (const pod of pods) pod.ns.destroy();
  });
});
