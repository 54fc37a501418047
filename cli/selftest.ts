// `cattle-cni netlink-selftest <netns>`: exercises the kernel layer end to end
// from inside the executable (veth with its peer created in the netns,
// addresses, routes, sysctl, read back, delete) and prints what it did.
import { Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import { openNetns } from '../lib/netns.ts';
import { interfaceKey, sysctlGetIn, sysctlSetIn } from '../lib/sysctl.ts';

interface Step {
  step: string;
  ms: number;
  result?: unknown;
}

export function netlinkSelftest(netnsPath: string): { ok: boolean; steps: Step[]; error?: string } {
  const steps: Step[] = [];
  const record = <T>(step: string, fn: () => T): T => {
    const t0 = performance.now();
    const result = fn();
    steps.push({ step, ms: Math.round((performance.now() - t0) * 100) / 100, ...(result === undefined ? {} : { result }) });
    return result;
  };
  const ns = record('open netns', () => openNetns(netnsPath));
  const host = Rtnetlink.open();
  const cont = Rtnetlink.open({ netnsFd: ns.fd });
  const hostName = `cst${process.pid.toString(16)}`.slice(0, 15);
  const fail = (what: string): never => {
    throw new Error(`self-test check failed: ${what}`);
  };
  try {
    record('create veth (peer in netns)', () => host.createVeth({ name: hostName, peerName: 'st0', peerNetnsFd: ns.fd, mtu: 1400 }));
    const h = host.linkByName(hostName) ?? fail('host veth missing');
    record('set alias and up (host side)', () => {
      host.setAlias(h.index, 'cattle-cni selftest');
      host.setUp(h.index);
    });
    const c = cont.linkByName('st0') ?? fail('container veth missing');
    record('sysctl accept_dad=0 in netns', () => sysctlSetIn(ns, [[interfaceKey(6, 'st0', 'accept_dad'), '0']]));
    record('add addresses', () => {
      cont.addAddress(c.index, '198.18.0.2/30', { nodad: true });
      cont.addAddress(c.index, 'fd00:5e1f::2/64', { nodad: true });
      host.addAddress(h.index, '198.18.0.1/30');
    });
    record('set up (container side)', () => cont.setUp(c.index));
    record('add default route', () => cont.addRoute({ dst: '0.0.0.0/0', gw: '198.18.0.1', oif: c.index }));
    const link = record('read back link', () => {
      const l = cont.linkByName('st0') ?? fail('link vanished');
      if (l.mtu !== 1400) fail(`mtu ${l.mtu}`);
      if (l.kind !== 'veth') fail(`kind ${l.kind}`);
      return { name: l.name, index: l.index, mtu: l.mtu, mac: l.mac, kind: l.kind, peerIndex: l.parentIndex };
    });
    record('read back addresses', () => {
      const addrs = cont.addresses({ index: c.index }).map((a) => a.cidr);
      for (const want of ['198.18.0.2/30', 'fd00:5e1f::2/64']) if (!addrs.includes(want)) fail(`address ${want} missing`);
      return addrs;
    });
    record('read back routes', () => {
      const routes = cont.routes({ family: 4 }).map((r) => `${r.dst}${r.gw ? ` via ${r.gw}` : ''}`);
      if (!routes.includes('0.0.0.0/0 via 198.18.0.1')) fail('default route missing');
      return routes;
    });
    record('read sysctl', () => sysctlGetIn(ns, interfaceKey(6, 'st0', 'accept_dad')));
    record('peer index matches host veth', () => {
      if (link.peerIndex !== h.index) fail(`peer index ${link.peerIndex} != ${h.index}`);
    });
    record('delete veth', () => host.deleteLink(h.index));
    record('verify gone', () => {
      if (host.linkByName(hostName) || cont.linkByName('st0')) fail('veth still present');
    });
    return { ok: true, steps };
  } catch (e) {
    const leftover = host.linkByName(hostName);
    if (leftover) host.deleteLink(leftover.index);
    return { ok: false, steps, error: (e as Error).message };
  } finally {
    host.close();
    cont.close();
    ns.close();
  }
}
