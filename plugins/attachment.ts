// The life of a veth attachment, shared by cattle-bridge and cattle-ptp:
// ADD (re-ADD check, leftover removal, kernel work overlapped with IPAM,
// rollback of everything on failure) and DEL (best effort, owner-checked, no
// netns needed). Each plugin supplies only its own steps.
import type { CniRequest } from '../lib/skel.ts';
import { CniError, ERR_INTERNAL } from '../lib/spec/errors.ts';
import type { Result } from '../lib/spec/result.ts';
import { Rtnetlink, type Link } from '../lib/netlink/rtnetlink.ts';
import { isErrno } from '../lib/netlink/errors.ts';
import { isOwnedBy, parseOwnerMark, type Owner } from '../lib/hostveth.ts';
import { ipamCheck, ipamDel, startIpamAdd } from '../lib/ipam.ts';
import { prevResultOf } from '../lib/spec/config.ts';
import { loadState, removeState, saveState } from '../lib/state.ts';
import { Logger } from '../lib/log.ts';
import type { Netns } from '../lib/netns.ts';
import { openPodNetns, podNetnsId, requireIps, requirePrevResult } from './common.ts';

export interface AttachmentConf {
  network: string;
  logToFile?: string;
  isDebugLevel: boolean;
}

/** What ADD remembers per attachment (lib/state.ts), for re-ADD and DEL. */
export interface AttachmentState {
  netns: string | undefined;
  hostVeth: string;
  result: Result;
}

export interface AddContext<C> {
  req: CniRequest;
  conf: C;
  log: Logger;
  ns: Netns;
  host: Rtnetlink;
  cont: Rtnetlink;
  owner: Owner;
  hostName: string;
}

export interface VethPlugin<C extends AttachmentConf> {
  name: string;
  loadConfig(req: CniRequest): C;
  hostVethName(conf: C, owner: Owner): string;
  /** Kernel work that needs no address (runs while IPAM works); returns the host veth. */
  prepare(ctx: AddContext<C>): Link;
  /** Addresses, routes, rules from the IPAM result; returns the CNI result. */
  configure(ctx: AddContext<C>, hostVeth: Link, ipam: Result): Promise<Result> | Result;
  /** Undo what configure may have done beyond the veth (the veth itself is handled). */
  rollback?(ctx: AddContext<C>): void;
  /** DEL: remove what the plugin made beyond the veth (e.g. masquerade rules). */
  cleanup?(conf: C, owner: Owner): void;
}

export function loggerFor(plugin: string, req: CniRequest, conf: AttachmentConf): Logger {
  return new Logger({ plugin, command: req.command, containerId: req.containerId, ifname: req.ifname }, conf.logToFile, conf.isDebugLevel);
}

// ---- ADD --------------------------------------------------------------------

export async function addAttachment<C extends AttachmentConf>(p: VethPlugin<C>, req: CniRequest): Promise<Result> {
  const conf = p.loadConfig(req);
  const log = loggerFor(p.name, req, conf);
  const owner: Owner = { containerId: req.containerId, ifname: req.ifname };
  const ns = openPodNetns(req);
  // Without a state file for this netns this cannot be a re-ADD: start IPAM at
  // once, so an executed delegate (host-local) runs while we do kernel work.
  const state = loadState<AttachmentState>(p.name, conf.network, owner.containerId, owner.ifname);
  const maybeAgain = !!state && state.netns === podNetnsId(req);
  let ipamOutcome = maybeAgain ? undefined : startIpamAdd(req);
  const host = Rtnetlink.open();
  const cont = Rtnetlink.open({ netnsFd: ns.fd });
  const ctx: AddContext<C> = { req, conf, log, ns, host, cont, owner, hostName: p.hostVethName(conf, owner) };
  try {
    const again = maybeAgain ? log.step('re-ADD check', () => existingAttachment(p.name, ctx, state!)) : undefined;
    if (again) {
      log.finish('ok', { reused: true });
      return again;
    }
    ipamOutcome ??= startIpamAdd(req);
    const result = await freshAttachment(p, ctx, ipamOutcome);
    log.finish('ok', { ips: result.ips?.map((i) => i.address) });
    return result;
  } catch (e) {
    log.finish('error', { error: (e as Error).message, details: (e as CniError).details });
    throw e;
  } finally {
    host.close();
    cont.close();
    ns.close();
  }
}

/** Re-ADD of the same container+ifname into the same netns: the same result, nothing changed. */
function existingAttachment(plugin: string, ctx: AddContext<AttachmentConf>, state: AttachmentState): Result | undefined {
  const { req, owner } = ctx;
  const hostLink = ctx.host.linkByName(state.hostVeth);
  const contLink = ctx.cont.linkByName(req.ifname);
  if (!hostLink || !isOwnedBy(hostLink, plugin, owner) || !contLink || contLink.parentIndex !== hostLink.index) return undefined;
  return state.result;
}

async function freshAttachment<C extends AttachmentConf>(p: VethPlugin<C>, ctx: AddContext<C>,
  ipamOutcome: Promise<{ result?: Result; error?: unknown }>): Promise<Result> {
  const { req, conf, log, host, owner } = ctx;
  let hostVeth: Link | undefined;
  try {
    if (ctx.cont.linkByName(req.ifname)) {
      throw new CniError(ERR_INTERNAL, `container already has an interface named ${req.ifname}`, `netns ${req.netns}`);
    }
    log.step('remove our leftover veth', () => removeLeftoverVeth(p.name, host, ctx.hostName, owner));
    hostVeth = p.prepare(ctx);
    const { result: ipam, error } = await ipamOutcome;
    if (!ipam) throw error;
    requireIps(ipam, String(req.config.ipam?.type));
    const result = await p.configure(ctx, hostVeth, ipam);
    saveState(p.name, conf.network, owner.containerId, owner.ifname, { netns: podNetnsId(req), hostVeth: ctx.hostName, result } satisfies AttachmentState);
    return result;
  } catch (e) {
    // Nothing half-done stays behind: the veth (both ends, and every route
    // through them), the plugin's extras, the lease.
    if (hostVeth) quietly(() => deleteLinkQuietly(host, hostVeth!.index));
    if (p.rollback) quietly(() => p.rollback!(ctx));
    await ipamOutcome;
    await quietlyAsync(() => ipamDel(req));
    throw e;
  }
}

/** A same-named host link is removed only when its mark names this very attachment. */
function removeLeftoverVeth(plugin: string, host: Rtnetlink, name: string, owner: Owner): void {
  const old = host.linkByName(name);
  if (!old) return;
  if (!isOwnedBy(old, plugin, owner)) {
    const mark = parseOwnerMark(old.alias);
    throw new CniError(ERR_INTERNAL, `host interface ${name} already exists and is not this attachment's`,
      mark ? `it belongs to ${mark.plugin} container ${mark.containerId} interface ${mark.ifname}` : 'it carries no cattle-cni mark; remove it by hand if it is stale');
  }
  deleteLinkQuietly(host, old.index);
}

// ---- DEL --------------------------------------------------------------------

/**
 * Best effort, in this order: the host veth (named from the attachment, or as
 * recorded at ADD), the plugin's extras, IPAM DEL (started first: it runs
 * while the kernel deletes the veth). No netns needed: it may be gone.
 * Only a link marked as this attachment's is ever removed.
 */
export async function delAttachment<C extends AttachmentConf>(p: VethPlugin<C>, req: CniRequest): Promise<void> {
  const conf = p.loadConfig(req);
  const log = loggerFor(p.name, req, conf);
  const owner: Owner = { containerId: req.containerId, ifname: req.ifname };
  const ipamDone = ipamDel(req).then(() => undefined, (e: unknown) => e ?? new Error('IPAM DEL failed'));
  let firstError: unknown;
  const attempt = (step: string, fn: () => void) => {
    try {
      log.step(step, fn);
    } catch (e) {
      firstError ??= e;
    }
  };
  attempt('delete veth', () => {
    const state = loadState<AttachmentState>(p.name, conf.network, owner.containerId, owner.ifname);
    const names = new Set([p.hostVethName(conf, owner), ...(state?.hostVeth ? [state.hostVeth] : [])]);
    const host = Rtnetlink.open();
    try {
      for (const name of names) {
        const link = host.linkByName(name);
        if (link && isOwnedBy(link, p.name, owner)) deleteLinkQuietly(host, link.index);
      }
    } finally {
      host.close();
    }
  });
  if (p.cleanup) attempt('plugin cleanup', () => p.cleanup!(conf, owner));
  const ipamError = await ipamDone;
  firstError ??= ipamError;
  removeState(p.name, conf.network, owner.containerId, owner.ifname);
  log.finish(firstError ? 'error' : 'ok', firstError ? { error: (firstError as Error).message } : {});
  if (firstError) throw firstError;
}

// ---- CHECK ------------------------------------------------------------------

export interface CheckContext<C> {
  req: CniRequest;
  conf: C;
  prev: Result;
  owner: Owner;
  host: Rtnetlink;
  cont: Rtnetlink;
}

/** CHECK: the plugin verifies kernel state against prevResult, then IPAM checks its part. */
export async function checkAttachment<C extends AttachmentConf>(p: VethPlugin<C>, req: CniRequest, verify: (ctx: CheckContext<C>) => void): Promise<void> {
  const conf = p.loadConfig(req);
  const prev = requirePrevResult(prevResultOf(req.config));
  const ns = openPodNetns(req);
  const host = Rtnetlink.open();
  const cont = Rtnetlink.open({ netnsFd: ns.fd });
  try {
    verify({ req, conf, prev, owner: { containerId: req.containerId, ifname: req.ifname }, host, cont });
  } finally {
    host.close();
    cont.close();
    ns.close();
  }
  await ipamCheck(req);
}

// ---- helpers ------------------------------------------------------------------

export function deleteLinkQuietly(host: Rtnetlink, index: number): void {
  try {
    host.deleteLink(index);
  } catch (e) {
    if (!isErrno(e, 'ENODEV')) throw e;
  }
}

function quietly(fn: () => void): void {
  try {
    fn();
  } catch {
    // rollback is best effort; the original error is what the runtime sees
  }
}

async function quietlyAsync(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch {
    // as above
  }
}
