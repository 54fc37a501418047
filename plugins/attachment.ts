// The life of a veth attachment, shared by cattle-bridge and cattle-ptp.
//
// ADD is a sequence of named steps; each registers its undo the moment its
// resource exists, and a failure unwinds them all. A kill can strike between
// any two steps, so nothing is ever created that DEL and GC cannot find: the
// attachment is recorded (state file naming the host veth) before the veth is
// made, and the veth's ownership mark names the attachment whatever the
// container id's length. ADD, DEL and GC of one attachment hold its lock, and
// every child process (IPAM delegate, iptables) inherits it, so a DEL after a
// killed ADD waits for the ADD's orphans instead of racing them.
//
// Addresses come from the IPAM plugin of ipam.type, or — an L2-only network
// (bridge without an IPAM type) — from nowhere: then the attachment's IPAM is
// NO_IPAM, which runs nothing on ADD, its undo, DEL, CHECK, GC and STATUS,
// and ADD's one branch takes the plugin's configureLayer2 instead of waiting
// for a lease.
import { inheritInChildren, stopInheriting } from '../lib/children.ts';
import { prevResultOf } from '../lib/cni/config.ts';
import { CniError, ERR_INTERNAL } from '../lib/cni/errors.ts';
import type { Result } from '../lib/cni/result.ts';
import { isOfNetwork, isOwnedBy, markNames, type Owner, ownerMark, type ParsedMark, parseOwnerMark } from '../lib/hostveth.ts';
import { delegatedIpam, type Ipam, type IpamOutcome, NO_IPAM } from '../lib/ipam.ts';
import type { Lock } from '../lib/lock.ts';
import { Logger } from '../lib/log.ts';
import { ignoreErrno } from '../lib/netlink/errors.ts';
import { type Link, Rtnetlink } from '../lib/netlink/rtnetlink.ts';
import type { Netns } from '../lib/netns.ts';
import type { CniRequest } from '../lib/skel.ts';
import { type AttachmentKey, listStates, loadState, lockAttachment, removeOrphanFiles, removeState, saveState, tryLockAttachment } from '../lib/state.ts';
import { UndoStack } from '../lib/undo.ts';
import { openPodNetns, podNetnsId, requireIps, requirePrevResult, validAttachments } from './common.ts';

export interface AttachmentConf {
  network: string;
  logToFile?: string;
  isDebugLevel: boolean;
  /** Where the pod's addresses come from: the IPAM plugin of ipam.type, or nowhere (an L2-only network). */
  addressing: 'ipam' | 'none';
}

/**
 * What ADD records per attachment (lib/state.ts). Written before the veth
 * exists (no result yet: "ADD in progress") and again when ADD succeeded.
 */
export interface AttachmentState {
  netns: string | undefined;
  hostVeth: string;
  result?: Result;
}

export interface AddContext<C> {
  plugin: string;
  req: CniRequest;
  conf: C;
  log: Logger;
  ns: Netns;
  host: Rtnetlink;
  cont: Rtnetlink;
  owner: Owner;
  hostName: string;
  /** Steps register their undo here, right after (or, when harmless, right before) making a resource. */
  undo: UndoStack;
}

export interface VethPlugin<C extends AttachmentConf> {
  name: string;
  loadConfig(req: CniRequest): C;
  hostVethName(conf: C, owner: Owner): string;
  /** Kernel work that needs no address (runs while IPAM works); returns the host veth. */
  prepare(ctx: AddContext<C>): Link;
  /** Addresses, routes, rules from the IPAM result; returns the CNI result. */
  configure(ctx: AddContext<C>, hostVeth: Link, ipam: Result): Promise<Result> | Result;
  /** L2-only network (addressing "none"): the pod's interface without any address; returns the CNI result. Without it the plugin needs IPAM. */
  configureLayer2?(ctx: AddContext<C>, hostVeth: Link): Result;
  /** DEL and GC: remove what the plugin made beyond the veth; must be harmless when none of it exists. */
  cleanup?(conf: C, owner: Owner): void;
}

export function loggerFor(plugin: string, req: CniRequest, conf: AttachmentConf): Logger {
  return new Logger({ plugin, command: req.command, containerId: req.containerId, ifname: req.ifname }, conf.logToFile, conf.isDebugLevel);
}

/** The attachment's IPAM: the delegate of ipam.type, or none at all on an L2-only network. */
export function ipamOf(conf: AttachmentConf, req: CniRequest): Ipam {
  return conf.addressing === 'none' ? NO_IPAM : delegatedIpam(req);
}

function keyOf(plugin: string, network: string, o: Owner): AttachmentKey {
  return { plugin, network, containerId: o.containerId, ifname: o.ifname };
}

/**
 * Hold the attachment's lock, shared with every child started meanwhile. The
 * lock file goes with it when `removeAfter` says so (DEL; a failed ADD that
 * left no record).
 */
async function holdingAttachment<T>(key: AttachmentKey, fn: () => Promise<T>, removeAfter: (failed: boolean) => boolean): Promise<T> {
  const lock: Lock = lockAttachment(key);
  inheritInChildren(lock.fd);
  let failed = true;
  try {
    const out = await fn();
    failed = false;
    return out;
  } finally {
    stopInheriting(lock.fd);
    lock.release({ remove: removeAfter(failed) });
  }
}

// ---- ADD --------------------------------------------------------------------

export async function addAttachment<C extends AttachmentConf>(p: VethPlugin<C>, req: CniRequest): Promise<Result> {
  const conf = p.loadConfig(req);
  const ipam = ipamOf(conf, req);
  ipam.validate();
  const log = loggerFor(p.name, req, conf);
  const owner: Owner = { containerId: req.containerId, ifname: req.ifname };
  const key = keyOf(p.name, conf.network, owner);
  const ns = openPodNetns(req);
  try {
    return await holdingAttachment(key, async () => {
      // Without a finished ADD for this netns this cannot be a re-ADD: start
      // IPAM at once, so an executed delegate (host-local) runs while we do
      // kernel work.
      const state = loadState<AttachmentState>(key);
      const maybeAgain = !!state?.result && state.netns === podNetnsId(req);
      let ipamOutcome = maybeAgain ? undefined : ipam.start();
      const host = Rtnetlink.open();
      const cont = Rtnetlink.open({ netnsFd: ns.fd });
      const ctx: AddContext<C> = { plugin: p.name, req, conf, log, ns, host, cont, owner, hostName: p.hostVethName(conf, owner), undo: new UndoStack() };
      try {
        const again = maybeAgain ? log.step('re-ADD check', () => existingAttachment(ctx, state!)) : undefined;
        if (again) {
          log.finish('ok', { reused: true });
          return again;
        }
        ipamOutcome ??= ipam.start();
        const result = await freshAttachment(p, ctx, key, state, ipam, ipamOutcome);
        log.finish('ok', { ips: result.ips?.map((i) => i.address) });
        return result;
      } finally {
        host.close();
        cont.close();
      }
    }, (failed) => failed && !loadState(key));
  } catch (e) {
    log.finish('error', { error: (e as Error).message, details: (e as CniError).details });
    throw e;
  } finally {
    ns.close();
  }
}

/** Re-ADD of the same container+ifname into the same netns: the same result, nothing changed. */
function existingAttachment(ctx: AddContext<AttachmentConf>, state: AttachmentState): Result | undefined {
  const { req, owner, plugin, conf } = ctx;
  const hostLink = ctx.host.linkByName(state.hostVeth);
  const contLink = ctx.cont.linkByName(req.ifname);
  if (!hostLink || !isOwnedBy(hostLink, plugin, owner, conf.network) || !contLink || contLink.parentIndex !== hostLink.index) return undefined;
  return state.result;
}

async function freshAttachment<C extends AttachmentConf>(p: VethPlugin<C>, ctx: AddContext<C>, key: AttachmentKey,
  previous: AttachmentState | undefined, ipam: Ipam, ipamOutcome: Promise<IpamOutcome>): Promise<Result> {
  const { req, log, undo } = ctx;
  const record = (result?: Result) => saveState<AttachmentState>(key, { netns: podNetnsId(req), hostVeth: ctx.hostName, result });
  undo.push('release the IPAM lease', async () => {
    await ipamOutcome;
    await ipam.del();
  });
  try {
    log.step('remove this attachment\'s leftovers', () => removeLeftovers(ctx, previous));
    log.step('container interface name is free', () => {
      if (ctx.cont.linkByName(req.ifname)) {
        throw new CniError(ERR_INTERNAL, `container already has an interface named ${req.ifname}`, `netns ${req.netns}`);
      }
    });
    // Recorded before the veth exists: a kill from here on leaves nothing DEL cannot find.
    log.step('record the attachment', () => record());
    undo.push('forget the attachment', () => removeState(key));
    const hostVeth = p.prepare(ctx);
    const result = ctx.conf.addressing === 'none'
      ? withoutAddresses(p, ctx, hostVeth)
      : await withIpamAddresses(p, ctx, hostVeth, ipam, ipamOutcome);
    log.step('record the result', () => record(result));
    undo.commit();
    return result;
  } catch (e) {
    // Nothing half-done stays behind; the original error is what the runtime sees.
    const failures = await undo.unwind();
    if (failures.length) log.detail('rollback incomplete', { failures: failures.map((f) => `${f.name}: ${(f.error as Error)?.message}`) });
    throw e;
  }
}

/** The IPAM path: wait for the lease (it was allocated while the kernel work went on), then addresses, routes, rules from it. */
async function withIpamAddresses<C extends AttachmentConf>(p: VethPlugin<C>, ctx: AddContext<C>, hostVeth: Link, ipam: Ipam,
  ipamOutcome: Promise<IpamOutcome>): Promise<Result> {
  const { result, error } = await ipamOutcome;
  if (!result) throw error;
  requireIps(result, String(ipam.type));
  return p.configure(ctx, hostVeth, result);
}

/** The L2-only path: no IPAM ran and none is waited for; the pod's interface gets no address. */
function withoutAddresses<C extends AttachmentConf>(p: VethPlugin<C>, ctx: AddContext<C>, hostVeth: Link): Result {
  // Unreachable from a valid config: a plugin without an L2 mode never says addressing "none".
  if (!p.configureLayer2) throw new CniError(ERR_INTERNAL, `${p.name} has no L2-only mode`, 'it needs an ipam section with a type');
  return p.configureLayer2(ctx, hostVeth);
}

/**
 * A host link is this attachment's when its mark names the attachment, or —
 * an ADD killed between creating the veth and marking it — when it is an
 * unmarked veth under the very name this attachment recorded before creating it.
 */
function isAttachmentsLink(link: Link, plugin: string, owner: Owner, network: string, state: AttachmentState | undefined): boolean {
  if (isOwnedBy(link, plugin, owner, network)) return true;
  return !link.alias && link.kind === 'veth' && state?.hostVeth === link.name;
}

/** Links of an earlier, unfinished or killed ADD of this attachment go; a stranger under our name is an error. */
function removeLeftovers(ctx: AddContext<AttachmentConf>, previous: AttachmentState | undefined): void {
  const { host, plugin, owner, conf, hostName } = ctx;
  for (const name of new Set([hostName, ...(previous?.hostVeth ? [previous.hostVeth] : [])])) {
    const old = host.linkByName(name);
    if (!old) continue;
    if (isAttachmentsLink(old, plugin, owner, conf.network, previous)) {
      deleteLinkQuietly(host, old.index);
    } else if (name === hostName) {
      const mark = parseOwnerMark(old.alias);
      throw new CniError(ERR_INTERNAL, `host interface ${name} already exists and is not this attachment's`,
        mark ? `it belongs to ${mark.plugin} container ${mark.container} interface ${mark.ifname}` : 'it carries no cattle-cni mark; remove it by hand if it is stale');
    }
  }
}

/**
 * The pair in one request: the host end here, the pod end created directly
 * in the pod's netns. Marked at once; its undo (delete the host end, which
 * takes the peer and every route through them along) registered at once.
 */
export function createVethPair(ctx: AddContext<AttachmentConf>, spec: { mtu?: number; peerMtu?: number; mac?: string; peerMac?: string }): Link {
  const { host, cont, ns, hostName, req, owner, undo, plugin, conf } = ctx;
  host.createVeth({ name: hostName, peerName: req.ifname, peerNetnsFd: ns.fd, ...spec });
  const link = host.linkByName(hostName);
  if (!link) throw new CniError(ERR_INTERNAL, `host veth ${hostName} missing after creation`);
  undo.push('delete the veth pair', () => deleteLinkQuietly(host, link.index));
  host.setAlias(link.index, ownerMark(plugin, owner, conf.network));
  if (!cont.linkByName(req.ifname)) throw new CniError(ERR_INTERNAL, `container interface ${req.ifname} missing after creation`);
  return host.linkByIndex(link.index) ?? link;
}

// ---- DEL --------------------------------------------------------------------

/**
 * Best effort, in this order: the host veth (named from the attachment, or as
 * recorded at ADD; sent first, IPAM DEL runs while the kernel deletes it),
 * the plugin's extras, IPAM DEL. No netns needed: it may be gone.
 * Only a link of this attachment is ever removed. The record goes only when
 * everything succeeded, so a retried DEL still knows what to look for.
 */
export async function delAttachment<C extends AttachmentConf>(p: VethPlugin<C>, req: CniRequest): Promise<void> {
  const conf = p.loadConfig(req);
  const log = loggerFor(p.name, req, conf);
  const owner: Owner = { containerId: req.containerId, ifname: req.ifname };
  const key = keyOf(p.name, conf.network, owner);
  const errors = await holdingAttachment(key, async () => {
    const state = loadState<AttachmentState>(key);
    const errs = new Errors(log);
    // The kernel's part is the slow one (deleting a veth waits ~20 ms for an RCU barrier): it is sent
    // first, from a pool thread, and IPAM DEL runs meanwhile. DEL goes on once the link is gone, not
    // once it is freed (deleteLinkUntilGone). In the agent, other requests go on too.
    const vethGone = errs.attemptAsync('delete veth', async () => {
      const host = Rtnetlink.open();
      try {
        for (const name of new Set([p.hostVethName(conf, owner), ...(state?.hostVeth ? [state.hostVeth] : [])])) {
          const link = host.linkByName(name);
          if (link && isAttachmentsLink(link, p.name, owner, conf.network, state)) await host.deleteLinkUntilGone(link.index);
        }
      } finally {
        host.close();
      }
    });
    const ipamDone = ipamOf(conf, req).del().then(() => undefined, (e: unknown) => e ?? new Error('IPAM DEL failed'));
    await vethGone;
    if (p.cleanup) errs.attempt('plugin cleanup', () => p.cleanup!(conf, owner));
    const ipamError = await ipamDone;
    if (ipamError) errs.add('IPAM DEL', ipamError);
    if (errs.list.length === 0) errs.attempt('forget the attachment', () => removeState(key));
    return errs.list;
  }, () => true);
  log.finish(errors.length ? 'error' : 'ok', errors.length ? { error: (errors[0]!.error as Error).message } : {});
  if (errors.length) throw errors[0]!.error;
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
  await ipamOf(conf, req).check();
}

// ---- GC ---------------------------------------------------------------------

/**
 * GC (spec 1.1): remove every attachment of this network that is not in
 * cni.dev/valid-attachments — host veths (marked, or recorded by a killed
 * ADD), the plugin's extras, records, temporary and lock files — continuing
 * past errors and reporting them all; then IPAM GC, always.
 * `isOurs` decides, for links whose mark names no network (earlier
 * versions), whether they belong to this network.
 */
export async function gcAttachments<C extends AttachmentConf>(p: VethPlugin<C>, req: CniRequest,
  legacyIsOurs: (host: Rtnetlink, link: Link, mark: ParsedMark) => boolean, extra?: (errs: Errors) => void): Promise<void> {
  const conf = p.loadConfig(req);
  const valid = validAttachments(req);
  const errs = new Errors(loggerFor(p.name, req, conf));
  const records = listStates<AttachmentState>(p.name).filter((r) => r.key.network === conf.network);
  const stale = records.filter((r) => !valid.has(`${r.key.containerId}/${r.key.ifname}`));
  errs.attempt('remove stale veths', () => withHost((host) => {
    const staleNames = new Set(stale.map((r) => r.hostVeth));
    for (const link of host.links({ kind: 'veth' })) {
      const mark = parseOwnerMark(link.alias);
      const ours = mark ? isOfNetwork(mark, p.name, conf.network) && (mark.network !== undefined || legacyIsOurs(host, link, mark))
        : staleNames.has(link.name);
      if (!ours || (mark && isValid(mark, valid, p.name, conf.network))) continue;
      errs.attempt(`delete ${link.name}`, () => deleteLinkQuietly(host, link.index));
    }
  }));
  for (const r of stale) {
    const lock = tryLockAttachment(r.key);
    if (!lock) continue; // an ADD or DEL of it is running right now
    try {
      const owner = { containerId: r.key.containerId, ifname: r.key.ifname };
      if (p.cleanup) errs.attempt(`cleanup of ${owner.containerId}/${owner.ifname}`, () => p.cleanup!(conf, owner));
      errs.attempt(`forget ${owner.containerId}/${owner.ifname}`, () => removeState(r.key));
    } finally {
      lock.release({ remove: true });
    }
  }
  errs.attempt('remove orphaned state files', () => removeOrphanFiles(p.name));
  extra?.(errs);
  try {
    await ipamOf(conf, req).gc();
  } catch (e) {
    errs.add('IPAM GC', e);
  }
  errs.throwAll('GC');
}

function isValid(mark: ParsedMark, valid: Set<string>, plugin: string, network: string): boolean {
  for (const v of valid) {
    const slash = v.lastIndexOf('/');
    if (markNames(mark, plugin, { containerId: v.slice(0, slash), ifname: v.slice(slash + 1) }, network)) return true;
  }
  return false;
}

// ---- helpers ------------------------------------------------------------------

/** Failures collected while going on (DEL, GC): every step is attempted. */
export class Errors {
  readonly list: { step: string; error: unknown }[] = [];
  private readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  attempt(step: string, fn: () => void): void {
    try {
      this.log.step(step, fn);
    } catch (e) {
      this.add(step, e);
    }
  }

  async attemptAsync(step: string, fn: () => Promise<void>): Promise<void> {
    try {
      await this.log.stepAsync(step, fn);
    } catch (e) {
      this.add(step, e);
    }
  }

  add(step: string, error: unknown): void {
    this.list.push({ step, error });
  }

  /** One CNI error naming every failure. */
  throwAll(what: string): void {
    if (this.list.length === 0) return;
    if (this.list.length === 1 && this.list[0]!.error instanceof CniError) throw this.list[0]!.error;
    const details = this.list.map((f) => `${f.step}: ${(f.error as Error)?.message ?? String(f.error)}`).join('; ');
    throw new CniError(ERR_INTERNAL, `${what} failed in ${this.list.length} step(s)`, details);
  }
}

function withHost<T>(fn: (host: Rtnetlink) => T): T {
  const host = Rtnetlink.open();
  try {
    return fn(host);
  } finally {
    host.close();
  }
}

export function deleteLinkQuietly(host: Rtnetlink, index: number): void {
  ignoreErrno(() => host.deleteLink(index), 'ENODEV');
}
