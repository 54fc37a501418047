// fast-check arbitraries for the fuzz suite (issue 11, B): network
// configurations (valid-ish and hostile), CNI environments and CNI_ARGS.
//
// A case is plain data and symbolic where it touches the machine (which pod
// netns, which CNI_PATH, where a log file goes): fuzz-runner.ts resolves it
// against a test world, so a shrunk counterexample still reads well and
// replays anywhere. Everything generated stays inside the test's namespaces
// and directories: CNI_PATH only ever names our bin directory, Debian's
// /usr/lib/cni or directories that do not exist, and the runner replaces
// IPAM types that would execute anything else (see safeIpamType there).
import fs from 'node:fs';
import path from 'node:path';

import fc from 'fast-check';

import { BIN } from './harness.ts';

export type Exe = 'cattle-bridge' | 'rancher-bridge' | 'cattle-ptp' | 'cattle-ipam' | 'rancher-cni-ipam';
export type Family = 'bridge' | 'ptp' | 'ipam';

export type NetnsChoice =
  | { kind: 'pod' } // the world's first pod netns
  | { kind: 'pod2' } // the second one
  | { kind: 'host' } // the plugin's own netns, by its /var/run/netns path
  | { kind: 'self' } // /proc/self/ns/net: the plugin's own netns
  | { kind: 'file' } // a regular file
  | { kind: 'dir' } // a directory
  | { kind: 'missing' }
  | { kind: 'empty' }
  | { kind: 'literal'; value: string };

export type PathChoice = 'default' | 'ours' | 'reference' | 'missing' | 'empty' | 'nonexistent' | 'cwd' | 'colons' | 'relative';

export interface FuzzCase {
  exe: Exe;
  /** undefined: the variable is not set at all. */
  command?: string;
  containerId?: string;
  ifname?: string;
  netns: NetnsChoice;
  cniPath: PathChoice;
  cniArgs?: string;
  /** A configuration (JSON-encoded by the runner) or raw bytes. */
  stdin: { json: unknown } | { raw: string };
}

/** In a string of the configuration: replaced by the world's log directory. */
export const LOGS = '@LOGS@';
/** Replaced by the world's host-local data directory. */
export const HLDIR = '@HLDIR@';
export const REFERENCE_DIR = '/usr/lib/cni';

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** IPAM types a case may execute; any other name found on disk becomes one that is not. */
const ALLOWED_TYPES = new Set(['host-local', 'static', 'cattle-bridge', 'rancher-bridge', 'cattle-ptp', 'cattle-ipam', 'rancher-cni-ipam', 'cattle-cni']);

export function safeIpamType(type: string): string {
  if (ALLOWED_TYPES.has(type) || type.includes('/') || type.includes('\0') || type.length > 255) return type;
  for (const dir of [BIN, REFERENCE_DIR]) if (fs.existsSync(path.join(dir, type))) return `not-run-${type}`;
  return type;
}

const SAFE_METADATA = new Set(['127.0.0.1:1', 'http://127.0.0.1:1', 'http://127.0.0.1:1/', '[::1]:1', 'localhost:1', '', 'ftp://127.0.0.1/',
  '127.0.0.1:99999', 'http://user@127.0.0.1:1', 'https://127.0.0.1:1']);

/**
 * What a test world needs whatever a case says: host-local keeps its leases
 * in hlDir, an IPAM never waits long for a metadata service (there is none:
 * the timeout is capped at 1 s, the address is loopback) and no IPAM type
 * executes anything but the suite and host-local/static.
 */
export function confine(conf: unknown, hlDir: string): unknown {
  if (!isObject(conf)) return conf;
  const c = { ...conf };
  if (isObject(c.ipam)) {
    const ipam = { ...c.ipam };
    if (typeof ipam.type === 'string') ipam.type = safeIpamType(ipam.type);
    if (ipam.type === 'host-local') ipam.dataDir = hlDir;
    // Whatever the type says: the cattle-ipam executable reads any ipam section as its own.
    const t = typeof ipam.timeout === 'string' ? Number(ipam.timeout) : ipam.timeout;
    if (ipam.timeout === undefined || (typeof t === 'number' && t > 1)) ipam.timeout = 0.5;
    if (typeof ipam.metadataAddress === 'string' && !SAFE_METADATA.has(ipam.metadataAddress)) ipam.metadataAddress = '127.0.0.1:1';
    c.ipam = ipam;
  }
  return c;
}

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>) => ({ weight, arbitrary });

// ---- scalars ----------------------------------------------------------------

const VERSIONS = ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'];
const ODD_VERSIONS = ['', '1.2.0', '0.0.1', '9.9.9', '1.0', 'v1.0.0', '1.0.0 ', ' 1.0.0', '１.０.０', '0.4.0\n', '1.0.0-rc1', '01.0.0'];

/** Strings people and attackers write: unicode, controls, long, empty. */
export const oddString: fc.Arbitrary<string> = fc.oneof(
  w(3, fc.string({ maxLength: 12 })),
  w(2, fc.string({ unit: 'grapheme', maxLength: 8 })),
  w(2, fc.string({ unit: 'binary', maxLength: 8 })),
  w(1, fc.constantFrom('', ' ', '\n', '\t', '..', '.', '/', '\\', '%s%n', '${HOME}', '$(id)', '`id`', '\u202e', '\ufeff', 'null', 'true', '0', '-1')),
  w(1, fc.integer({ min: 256, max: 4096 }).map((n) => 'x'.repeat(n))),
);

/** A string made to hurt: 64 KiB to 1 MiB. */
const hugeString = fc.integer({ min: 1 << 16, max: 1 << 20 }).map((n) => 'A'.repeat(n));

/** Any JSON value, small, plus a few hostile ones. */
export const junk: fc.Arbitrary<unknown> = fc.oneof(
  w(4, fc.oneof(fc.constant(null), fc.boolean(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), oddString)),
  w(2, fc.jsonValue({ maxDepth: 2 })),
  w(1, fc.constantFrom(-1, 0, 1, 2 ** 31, 2 ** 53, -(2 ** 63), 1e308, 0.5, '1', 'true', 'false', [], {}, [null], { '': '' }, JSON.parse('{"__proto__":{"x":1}}') as unknown, { constructor: { prototype: 1 } })),
  w(1, fc.integer({ min: 1, max: 40 }).map((d) => nest(d))),
);

function nest(depth: number): unknown {
  let v: unknown = 'bottom';
  for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { a: v };
  return v;
}

const mac = fc.constantFrom('0a:58:0a:5a:00:05', '0A:58:0A:5A:00:06', 'ee:ee:ee:ee:ee:ee', '01:00:5e:00:00:01', 'ff:ff:ff:ff:ff:ff',
  '00:00:00:00:00:00', '0a:58:0a:5a:00', 'zz:zz:zz:zz:zz:zz', '0a-58-0a-5a-00-07', '');

/** Pod addresses: valid, edge and invalid. Prefix 10.90/16 everywhere, so bridges and leases never meet the uplink. */
export const ipText = fc.oneof(
  w(6, fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 2, max: 250 })).map(([a, b]) => `10.90.${a}.${b}/24`)),
  w(1, fc.constantFrom('10.90.0.5', '10.90.7.9/16', '10.90.0.0/24', '10.90.0.255/24', '10.90.0.1/24', '10.90.0.5/32', '10.90.0.5/31',
    'fd90::5/64', 'fd90::1/64', 'fd90::5/128', '169.254.1.1/32', '127.0.0.5/8', '0.0.0.0/0', '224.0.0.5/24', '255.255.255.255/32')),
  w(1, fc.constantFrom('10.90.0.300/24', '10.90.0.5/33', '10.90.0.5/-1', 'abc', '', '1.2.3', '::/0', '10.90.0.5/24/24', '10.90.0.5 /24',
    '0x0a.0.0.5/24', '010.090.000.005/24', 'fd90::g/64', '10.90.0.5%eth0/24')),
);

// ---- CNI_ARGS ---------------------------------------------------------------

const argPair: fc.Arbitrary<string> = fc.oneof(
  w(4, ipText.map((ip) => `IPAddress=${ip}`)),
  w(3, fc.constantFrom('IgnoreUnknown=1', 'IgnoreUnknown=true', 'IgnoreUnknown=0', 'IgnoreUnknown=TRUE', 'IgnoreUnknown=')),
  w(1, ipText.map((ip) => `IP=${ip}`)),
  w(1, mac.map((m) => `MAC=${m}`)),
  w(1, mac.map((m) => `MACAddress=${m}`)),
  w(1, fc.constantFrom('LinkMTUOverhead=50', 'LinkMTUOverhead=0', 'LinkMTUOverhead=-5', 'LinkMTUOverhead=abc', 'LinkMTUOverhead=99999')),
  w(1, fc.constantFrom('DOCKER=true', 'RancherContainerUUID=3f2c0d5e-aaaa-bbbb-cccc-000000000001', 'K8S_POD_NAME=web', 'K8S_POD_NAMESPACE=default',
    'GATEWAY=10.90.0.1', 'K8S_POD_INFRA_CONTAINER_ID=abc')),
  w(2, fc.tuple(oddString, oddString).map(([k, v]) => `${k}=${v}`)),
  w(1, oddString),
);

export const cniArgs: fc.Arbitrary<string | undefined> = fc.oneof(
  w(2, fc.constant(undefined)),
  w(1, fc.constant('')),
  // With the address given, cattle-ipam needs no metadata service at all.
  w(5, ipText.map((ip) => `IgnoreUnknown=1;IPAddress=${ip}`)),
  w(4, fc.array(argPair, { minLength: 1, maxLength: 6 }).map((a) => a.join(';'))),
  // Duplicates: the later one wins (Go's rule).
  w(1, fc.tuple(ipText, ipText).map(([a, b]) => `IgnoreUnknown=1;IPAddress=${a};IPAddress=${b}`)),
  w(1, fc.constantFrom(';', ';;', '=', '==', 'a=b=c', 'IPAddress', 'IgnoreUnknown=1;;IPAddress=10.90.0.9/24;', 'IgnoreUnknown=1; IPAddress=10.90.0.9/24')),
  w(1, hugeString.map((s) => `IgnoreUnknown=1;X=${s.slice(0, 100_000)}`)),
);

// ---- the environment ----------------------------------------------------------

export const command: fc.Arbitrary<string | undefined> = fc.oneof(
  w(10, fc.constant('ADD')),
  w(4, fc.constant('DEL')),
  w(2, fc.constant('CHECK')),
  w(1, fc.constantFrom('GC', 'STATUS', 'VERSION')),
  w(1, fc.constantFrom(undefined, '', 'add', 'ADD ', ' ADD', 'DELETE', 'Add', 'ADD\n', 'VERSIONS', 'ADD;DEL')),
  w(1, oddString),
);

const hex = (n: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: n, maxLength: n });

export const containerId: fc.Arbitrary<string | undefined> = fc.oneof(
  w(6, fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength: 12 }).map((s) => `fz-${s}`)),
  // Docker ids: Rancher's vethr<10 chars> host name on eth0.
  w(2, hex(64)),
  // Very long ids (runtimes allow any length).
  w(2, fc.tuple(fc.integer({ min: 200, max: 420 }), hex(8)).map(([n, h]) => `${h}${'c'.repeat(n)}`)),
  w(1, fc.constantFrom(undefined, '', '-dash', '.dot', 'a/b', 'a b', 'a;b', 'ünïcode', 'a\nb', '..', 'a:b', 'cnitool-81e3a71f81544407538e')),
  w(1, oddString),
);

export const ifname: fc.Arbitrary<string | undefined> = fc.oneof(
  w(8, fc.constant('eth0')),
  w(2, fc.constantFrom('net1', 'e', 'eth1', 'abcdefghijklmno', 'abcdefghijklmnop', 'lo', 'ëth0', 'eth0.5', 'eth-0', 'ETH0')),
  w(1, fc.constantFrom(undefined, '', '.', '..', 'a/b', 'a:b', 'a b', 'eth0\n', 'ééééééééé')),
  w(1, oddString),
);

export const netnsChoice: fc.Arbitrary<NetnsChoice> = fc.oneof(
  w(10, fc.constant({ kind: 'pod' as const })),
  w(1, fc.constant({ kind: 'pod2' as const })),
  w(2, fc.constantFrom<NetnsChoice>({ kind: 'missing' }, { kind: 'empty' }, { kind: 'host' }, { kind: 'self' }, { kind: 'file' }, { kind: 'dir' })),
  w(1, fc.oneof(
    fc.constantFrom('/nonexistent/netns', 'relative/netns', '/dev/null', '/proc/self/ns/mnt', '/proc/self/ns/uts', '/proc/self/fd/0', '/var/run/netns/', '/'),
    oddString,
  ).map((value) => ({ kind: 'literal' as const, value }))),
);

export const cniPath: fc.Arbitrary<PathChoice> = fc.oneof(
  w(12, fc.constant('default' as const)),
  w(2, fc.constantFrom<PathChoice>('ours', 'reference')),
  w(2, fc.constantFrom<PathChoice>('missing', 'empty', 'nonexistent', 'cwd', 'colons', 'relative')),
);

// ---- configurations -------------------------------------------------------------
//
// Two kinds of configuration: clean ones (valid values only, so that plenty of
// ADDs get through the kernel work and DEL has something to remove) and edgy
// ones (each field now and then at an edge value). The hostile values come
// from the mutations further down (a field deleted or set to junk, huge
// strings, the plugins as their own ipam.type) and from raw stdin.

const METADATA = ['127.0.0.1:1', 'http://127.0.0.1:1', 'http://127.0.0.1:1/', '[::1]:1', 'localhost:1', '', 'ftp://127.0.0.1/', '127.0.0.1:99999', 'http://user@127.0.0.1:1', 'https://127.0.0.1:1'];

const prevResult = fc.constantFrom(
  { cniVersion: '1.0.0', interfaces: [{ name: 'eth0', sandbox: '/x' }], ips: [{ address: '10.90.0.5/24', interface: 0 }] },
  { cniVersion: '0.3.1', ips: [{ version: '4', address: '10.90.0.5/24' }] },
  { ips: 'bad' },
  'bad',
);

function confArbitraries(clean: boolean): Record<Family, fc.Arbitrary<Record<string, unknown>>> {
  /** Clean: the valid values. Edgy: those, and 1 time in 8 an edge value. */
  const pick = <T>(valid: fc.Arbitrary<T>, ...edge: unknown[]): fc.Arbitrary<unknown> =>
    clean ? valid : fc.oneof(w(7, valid as fc.Arbitrary<unknown>), w(1, fc.constantFrom(...edge)));
  const flag = pick(fc.boolean(), 'true', 'false', 'TRUE', '1', 0, 1, 'yes', null);
  const mtu = pick(fc.constantFrom(0, 1280, 1400, 1500, 9000, '1500'), 68, 576, 65535, 65536, -1, 'abc', 1500.5);
  const logToFile = clean
    ? fc.constantFrom(`${LOGS}/plugin.log`, `${LOGS}/ipam.log`, '')
    : fc.oneof(
      w(3, fc.constantFrom(`${LOGS}/plugin.log`, `${LOGS}/ipam.log`, '')),
      // Hostile: relative (lands in the plugin's cwd), escaping it, numbers, odd types.
      w(1, fc.constantFrom('plugin.log', './plugin.log', 'sub/plugin.log', '../escape.log', 'ünï.log', ' ', '/dev/null', '/nonexistent-ccni-fuzz/x.log', `${LOGS}/`, `${LOGS}/./dot.log`)),
      w(1, fc.constantFrom(0, 7, -1, 1.5, true, null, [], {}, [`${LOGS}/a.log`])),
    );
  // Deadlines: small, or invalid (confine() turns a large valid one into a small one).
  const timeout = pick(fc.constantFrom(0.05, 0.2, 0.5, 1, '0.3'), 0, -1, 'abc', null, 4000, [], true);
  const cattleIpam = fc.record({
    type: fc.constantFrom('cattle-ipam', 'cattle-ipam', 'rancher-cni-ipam'),
    subnetPrefixSize: pick(fc.constantFrom('/24', '24', 24, 16, '/16'), '/32', 0, 33, 128, 129, '/abc', -1, '', 24.5),
    routes: pick(fc.constantFrom([], [{ dst: '0.0.0.0/0' }], [{ dst: '10.95.0.0/16', gw: '10.90.0.1' }]), [{ dst: 'fd95::/64' }], [{ dst: 'bad' }], [{ gw: '10.90.0.1' }], [{ dst: '0.0.0.0/0', gw: 'bad' }], 'bad'),
    gateway: pick(fc.constantFrom('10.90.0.1', '10.90.1.1'), '10.90.0.254', 'fd90::1', 'bad', '', '10.91.0.1'),
    metadataAddress: clean ? fc.constantFrom('127.0.0.1:1', 'http://127.0.0.1:1') : fc.constantFrom(...METADATA),
    metadataVersion: pick(fc.constantFrom('2015-12-19', '2015-07-25', 'latest'), '../x', 'a b', ''),
    timeout,
    logToFile,
    isDebugLevel: fc.boolean(),
  }, { requiredKeys: ['type', 'timeout'] });
  const hostLocal = fc.record({
    type: fc.constant('host-local'),
    ranges: pick(fc.constantFrom([[{ subnet: '10.90.4.0/24' }]], [[{ subnet: '10.90.5.0/28' }]], [[{ subnet: '10.90.6.0/24' }], [{ subnet: 'fd90:6::/120' }]]),
      [[{ subnet: 'garbage' }]], [[{ subnet: '10.90.7.0/31' }]], [[{ subnet: '10.90.8.0/32' }]], [], [[]], [[{}]]),
    routes: pick(fc.constantFrom([{ dst: '0.0.0.0/0' }], []), [{ dst: 'bad' }]),
  }, { requiredKeys: ['type', 'ranges'] });
  const staticIpam = fc.record({
    type: fc.constant('static'),
    addresses: pick(fc.constant([{ address: '10.90.9.5/24', gateway: '10.90.9.1' }]), [{ address: 'bad' }], []),
  }, { requiredKeys: ['type', 'addresses'] });
  const ipamSection = clean
    ? fc.oneof(w(5, cattleIpam), w(4, hostLocal), w(1, staticIpam))
    : fc.oneof(
      w(8, cattleIpam),
      w(5, hostLocal),
      w(1, staticIpam),
      // The plugins themselves as IPAM: delegation to oneself.
      w(1, fc.constantFrom('cattle-bridge', 'rancher-bridge', 'cattle-ptp', 'cattle-cni').map((type) => ({ type }))),
      w(1, fc.constantFrom('nonexistent-ipam', '', '.', '..', 'a/b', 'cattle-ipam ', 'CATTLE-IPAM').map((type) => ({ type }))),
    );
  const version = pick(fc.constantFrom(...VERSIONS), ...ODD_VERSIONS);
  const name = pick(fc.constantFrom('fuzznet', 'rancher', 'cattle-bridge', 'n'), '', ' ', 'ünï', 'a'.repeat(300), 'a.b', 'a:b', '..');
  const runtimeConfig = pick(fc.constantFrom({ mac: '0a:58:0a:5a:00:09' }, { ips: ['10.90.0.9/24'] }, {}), { ips: 'bad' }, { mac: 5 }, { mac: 'bad' }, { ips: ['bad'] });
  const dns = pick(fc.constantFrom({ nameservers: ['10.90.0.1'], search: ['local'] }, {}), { nameservers: 'bad' });
  const hostMac = clean ? fc.constantFrom('ee:ee:ee:ee:ee:ee', '0a:58:0a:5a:00:05') : mac;
  const bridge = fc.record({
    cniVersion: version,
    name,
    type: pick(fc.constantFrom('cattle-bridge', 'rancher-bridge'), 'bridge', '', 'cattle-ptp'),
    bridge: pick(fc.constantFrom('cbrfz0', 'cni0', 'rancher0', 'fz-br'), 'lo', 'up0', 'abcdefghijklmnop', 'a b', 'a/b', '', 'ëbr', 'br:0', 'abcdefghijklmno'),
    isGateway: flag,
    isDefaultGateway: flag,
    forceAddress: flag,
    ipMasq: fc.oneof(w(5, fc.constant(false)), w(1, fc.constant(true))),
    hostNat: fc.oneof(w(5, fc.constant(false)), w(1, fc.constant(true))),
    mtu,
    linkMTUOverhead: pick(fc.constantFrom(0, 50, 98), 1500, 65535, -1, '98', 'x'),
    // hairpinMode with promiscMode is refused (Rancher's rule): clean cases have at most one.
    ...(clean ? { hairpinMode: fc.constant(false) } : { hairpinMode: flag }),
    promiscMode: flag,
    // A kernel without bridge VLAN filtering refuses any vlan: an edge value here.
    vlan: pick(fc.constant(0), 42, 1, 4094, 4095, -1, '42'),
    enabledad: flag,
    macspoofchk: flag,
    bridgeSubnet: pick(fc.constantFrom('10.90.0.0/24', '10.90.0.0/16'), 'fd90::/64', 'bad', ''),
    // bridgeIP needs bridgeSubnet: only in edgy cases.
    ...(clean ? {} : { bridgeIP: pick(fc.constantFrom('10.90.0.1', '10.90.0.254'), '10.91.0.1', 'bad') }),
    useBridgeIPAsGateway: flag,
    skipBridgeConfigureIP: flag,
    logToFile,
    isDebugLevel: flag,
    ipam: ipamSection,
    dns,
    runtimeConfig,
    args: pick(fc.constantFrom({ cni: { mac: '0a:58:0a:5a:00:0a' } }, { cni: { ips: ['10.90.1.9/24'] } }), { cni: 'bad' }),
    ...(clean ? {} : { prevResult }),
  }, { requiredKeys: ['cniVersion', 'name', 'type', 'ipam'] });
  const ptp = fc.record({
    cniVersion: version,
    name,
    type: pick(fc.constant('cattle-ptp'), 'ptp', '', 'cattle-bridge'),
    mtu,
    hostVethPrefix: pick(fc.constantFrom('cptp', 'veth', 'c', 'abcdefgh'), 'cali', '', 'abcdefghi', 'abcdefghijklmnop', 'a b', 'a/b', 'ü', '1abc', 'a_b-c'),
    hostVethMac: hostMac,
    allowIPForwarding: flag,
    routeLocalnet: flag,
    logToFile,
    isDebugLevel: flag,
    ipam: ipamSection,
    dns,
    runtimeConfig,
    args: fc.constantFrom({ cni: { mac: '0a:58:0a:5a:00:0b' } }, { cni: { ips: ['10.90.2.9/24'] } }),
    ...(clean ? {} : { prevResult }),
  }, { requiredKeys: ['cniVersion', 'name', 'type', 'ipam'] });
  const ipam = fc.record({
    cniVersion: version,
    name,
    type: pick(fc.constantFrom('cattle-bridge', 'cattle-ipam', 'x'), 5, null),
    ipam: clean ? cattleIpam : fc.oneof(w(8, cattleIpam), w(1, ipamSection)),
    runtimeConfig,
    args: pick(fc.constantFrom({ cni: { ips: ['10.90.3.9/24'] } }, { cni: { ips: [] } }), { cni: { ips: 'x' } }),
    prevResult,
    'cni.dev/valid-attachments': pick(fc.constantFrom([], [{ containerID: 'fz-a', ifname: 'eth0' }]), 'bad'),
  }, { requiredKeys: ['cniVersion', 'name', 'ipam'] });
  // Debian's host-local and static speak up to 1.0.0: a clean case does not ask them for more.
  const fit = (c: Record<string, unknown>) => {
    const t = isObject(c.ipam) ? c.ipam.type : undefined;
    return clean && (t === 'host-local' || t === 'static') && c.cniVersion === '1.1.0' ? { ...c, cniVersion: '1.0.0' } : c;
  };
  return {
    bridge: (bridge as fc.Arbitrary<Record<string, unknown>>).map(fit),
    ptp: (ptp as fc.Arbitrary<Record<string, unknown>>).map(fit),
    ipam: ipam as fc.Arbitrary<Record<string, unknown>>,
  };
}

const CLEAN = confArbitraries(true);
const EDGY = confArbitraries(false);

// ---- hostile mutations of a configuration ------------------------------------------

type Path = string[];
const MUTABLE_PATHS: Path[] = [
  ['cniVersion'], ['name'], ['type'], ['ipam'], ['ipam', 'type'], ['ipam', 'subnetPrefixSize'], ['ipam', 'ranges'], ['ipam', 'routes'],
  ['ipam', 'logToFile'], ['ipam', 'gateway'], ['ipam', 'timeout'], ['ipam', 'metadataVersion'], ['ipam', 'isDebugLevel'],
  ['bridge'], ['mtu'], ['isGateway'], ['isDefaultGateway'], ['ipMasq'], ['vlan'], ['logToFile'], ['isDebugLevel'], ['hairpinMode'],
  ['promiscMode'], ['linkMTUOverhead'], ['bridgeSubnet'], ['bridgeIP'], ['hostVethPrefix'], ['hostVethMac'], ['routeLocalnet'],
  ['runtimeConfig'], ['runtimeConfig', 'ips'], ['runtimeConfig', 'mac'], ['args'], ['args', 'cni'], ['prevResult'], ['dns'],
  ['capabilities'], ['plugins'], ['ipam', 'ipam'], ['ipam', 'ipam', 'type'], ['cni.dev/valid-attachments'],
];

type Mutation = { op: 'del'; path: Path } | { op: 'set'; path: Path; value: unknown };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  w(3, fc.record({ op: fc.constant('del' as const), path: fc.constantFrom(...MUTABLE_PATHS) })),
  w(5, fc.record({ op: fc.constant('set' as const), path: fc.constantFrom(...MUTABLE_PATHS), value: junk })),
  // The plugins as IPAM of themselves or of each other: delegation without end.
  w(1, fc.record({ op: fc.constant('set' as const), path: fc.constantFrom<Path>(['ipam', 'type'], ['type']), value: fc.constantFrom('cattle-bridge', 'cattle-ptp', 'rancher-bridge', 'cattle-ipam') })),
  w(1, fc.record({ op: fc.constant('set' as const), path: fc.tuple(oddString).map((k) => k as Path), value: junk })),
  w(1, fc.record({ op: fc.constant('set' as const), path: fc.constantFrom<Path>(['name'], ['ipam', 'type'], ['bridge'], ['cniVersion'], ['logToFile'], ['ipam', 'gateway']), value: hugeString })),
);

export function applyMutations(conf: unknown, muts: Mutation[]): unknown {
  const c: unknown = structuredClone(conf);
  for (const m of muts) {
    if (c === null || typeof c !== 'object' || Array.isArray(c)) break;
    let parent = c as Record<string, unknown>;
    for (const k of m.path.slice(0, -1)) {
      const next = parent[k];
      if (next === null || typeof next !== 'object' || Array.isArray(next)) {
        parent[k] = {};
      }
      parent = parent[k] as Record<string, unknown>;
    }
    const last = m.path[m.path.length - 1]!;
    if (m.op === 'del') delete parent[last];
    else parent[last] = m.value;
  }
  return c;
}

function hostile(conf: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<unknown> {
  return fc.oneof(
    w(10, conf),
    w(6, fc.tuple(conf, fc.array(mutation, { minLength: 1, maxLength: 3 })).map(([c, m]) => applyMutations(c, m))),
    // Not an object at all.
    w(1, fc.oneof(conf.map((c) => [c]), junk)),
  );
}

/** Raw stdin: not JSON, almost JSON, JSON with a twist. */
function rawStdin(unconfined: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<string> {
  // Text is not confined by the runner: confine here, with placeholders it fills in.
  const conf = unconfined.map((c) => confine(c, HLDIR) as Record<string, unknown>);
  return fc.oneof(
    w(2, fc.string({ unit: 'binary', maxLength: 64 })),
    w(1, fc.constantFrom('', ' ', '\n', 'null', '[]', '{', '}', '{}', '""', '0', '{"cniVersion":', '{"a":1}{"b":2}', '\u0000', '{"cniVersion":"1.0.0"}\u0000')),
    w(2, fc.tuple(conf, fc.nat()).map(([c, k]) => { const t = JSON.stringify(c); return t.slice(0, k % (t.length + 1)); })),
    w(1, conf.map((c) => `\ufeff${JSON.stringify(c)}`)),
    w(1, conf.map((c) => `${JSON.stringify(c)} trailing`)),
    w(1, conf.map((c) => `${JSON.stringify(c)}\n${JSON.stringify(c)}`)),
    // Duplicate keys: the last one wins in JSON.parse.
    w(1, conf.map((c) => JSON.stringify(c).replace(/^\{/, '{"ipam":{"type":"cattle-bridge"},'))),
    w(1, fc.integer({ min: 1000, max: 200_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`)),
    w(1, fc.integer({ min: 1000, max: 50_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`)),
    w(1, hugeString.map((s) => `{"cniVersion":"1.0.0","name":"${s}","type":"x","ipam":{"type":"cattle-ipam","timeout":0.2}}`)),
  );
}

const EXES: Record<Family, fc.Arbitrary<Exe>> = {
  bridge: fc.oneof(w(9, fc.constant('cattle-bridge' as const)), w(1, fc.constant('rancher-bridge' as const))),
  ptp: fc.constant('cattle-ptp' as const),
  ipam: fc.oneof(w(9, fc.constant('cattle-ipam' as const)), w(1, fc.constant('rancher-cni-ipam' as const))),
};

/** A clean environment: a command that does something, a valid id, eth0, the pod, the address given. */
const cleanEnv = fc.record({
  command: fc.oneof(w(6, fc.constant('ADD')), w(2, fc.constant('DEL')), w(1, fc.constantFrom('CHECK', 'GC', 'STATUS'))),
  containerId: fc.oneof(
    w(3, fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789'), minLength: 1, maxLength: 12 }).map((s) => `fz-${s}`)),
    w(1, hex(64)),
  ),
  ifname: fc.constantFrom('eth0', 'eth0', 'eth0', 'net1'),
  netns: fc.constant<NetnsChoice>({ kind: 'pod' }),
  cniPath: fc.constant<PathChoice>('default'),
  cniArgs: fc.oneof(
    w(4, fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 2, max: 250 })).map(([a, b]) => `IgnoreUnknown=1;IPAddress=10.90.${a}.${b}/24`)),
    w(1, fc.constantFrom(undefined, 'IgnoreUnknown=1;IPAddress=fd90::7/64', 'IPAddress=10.90.0.8/24;MAC=0a:58:0a:5a:00:0c', 'IgnoreUnknown=1;IPAddress=10.90.1.7/24;LinkMTUOverhead=50')),
  ),
});

/** One invocation of a plugin of this family: a clean case 4 times in 10, else a mixed or hostile one. */
export function fuzzCase(family: Family): fc.Arbitrary<FuzzCase> {
  const clean = fc.tuple(EXES[family], cleanEnv, CLEAN[family]).map(([exe, env, json]): FuzzCase => ({ exe, ...env, stdin: { json } }));
  const stdin = fc.oneof(
    w(8, hostile(EDGY[family]).map((json) => ({ json }))),
    w(1, rawStdin(EDGY[family]).map((raw) => ({ raw }))),
  );
  const mixed = fc.record({
    exe: EXES[family],
    command,
    containerId,
    ifname,
    netns: netnsChoice,
    cniPath,
    cniArgs,
    stdin,
  });
  return fc.oneof(w(4, clean), w(6, mixed));
}
