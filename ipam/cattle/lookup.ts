// Finding a container's record in the metadata service, promptly and within a
// deadline: look at /containers (by external_id or uuid, else by the Kubernetes
// pod labels); when the record is not there yet, wait for the
// next metadata change with the /version long-poll and look again. A failing
// service (down, slow, 5xx, garbage) is retried with a short backoff until the
// deadline. Every request carries its own timeout. Two answers end the lookup at
// once: the record with invalid data (code 7; cattle will not fix it in seconds)
// and an answer over its size cap (code 11; reading it again costs the same).

import { validateMetadataContainers } from '../../gen/validators.js';
import { nowMs } from '../../lib/clock.ts';
import { CniError, ERR_INVALID_CONFIG, ERR_TRY_AGAIN_LATER } from '../../lib/cni/errors.ts';
import { isValidMac, strictIpVersion } from '../../lib/ip.ts';
import { httpGetJson, httpGetObjectList, longPoll, MetadataHttpError, MetadataTimeoutError, MetadataTooLargeError } from '../../lib/metadata-client.ts';

/** A plain request (not a long-poll) never waits longer than this. */
export const REQUEST_TIMEOUT_MS = 5000;
/** Long-polls are asked to return after this long at most, then the lookup looks again. */
export const LONG_POLL_S = 60;
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 1000;
/** Extra client-side time a long-poll gets beyond its maxWait, so the server answers first. */
const LONG_POLL_SLACK_MS = 2000;

export interface ContainerRecord {
  primary_ip: string;
  primary_mac_address?: string;
  dns?: string[];
  dns_search?: string[];
  uuid?: string;
  external_id?: string;
  name?: string;
}

/** The labels Rancher's Kubernetes containers carried, matched against CNI_ARGS K8S_POD_*. */
export const POD_NAMESPACE_LABEL = 'io.kubernetes.pod.namespace';
export const POD_NAME_LABEL = 'io.kubernetes.pod.name';
export const POD_UID_LABEL = 'io.kubernetes.pod.uid';

export interface PodTarget {
  /** CNI_ARGS K8S_POD_NAMESPACE. */
  namespace: string;
  /** CNI_ARGS K8S_POD_NAME. */
  name: string;
  /** CNI_ARGS K8S_POD_UID: compared only when the record has the label too. */
  uid?: string;
}

export interface LookupTarget {
  /** CNI_CONTAINERID, matched against external_id. */
  containerId: string;
  /** CNI_ARGS RancherContainerUUID, matched against uuid. */
  uuid?: string;
  /**
   * The Kubernetes pod, matched against the pod labels: for a runtime (containerd) that makes the
   * sandbox id only when it networks the pod, so no record can carry it beforehand.
   */
  pod?: PodTarget;
}

export interface LookupOptions {
  /** e.g. http://169.254.169.250 */
  baseUrl: string;
  /** e.g. 2015-12-19 */
  version: string;
  /** Overall budget in milliseconds. */
  timeoutMs: number;
  /** false: one look (retrying only failures), no waiting for the record to appear (CHECK). */
  waitForRecord?: boolean;
  /** Steps for the debug log. */
  onEvent?: (step: string, fields: Record<string, unknown>) => void;
}

type Outcome = { record: ContainerRecord; by: MatchedBy } | { absent: true; noList?: boolean };

/** The record of `target`, or a code-11 CniError that says what was tried and what failed. */
export async function findContainer(target: LookupTarget, opts: LookupOptions): Promise<ContainerRecord> {
  const started = nowMs();
  const deadline = started + opts.timeoutMs;
  const remaining = (): number => deadline - nowMs();
  const base = `${opts.baseUrl}/${opts.version}`;
  const containersUrl = `${base}/containers`;
  const versionUrl = `${base}/version`;
  const event = opts.onEvent ?? (() => {});
  const wait = opts.waitForRecord !== false;

  let lastError: string | undefined;
  let backoff = BACKOFF_FIRST_MS;
  let changes = 0;
  let noList = false; // the last look found no containers key at all
  // The metadata version read *before* the last look at /containers: a change after that look
  // makes the long-poll return at once, so no update can slip in between looking and waiting.
  let seenVersion: string | undefined;
  // false once the server showed it has no /version key: then poll gently instead.
  let canWait = true;
  let lookFirst = true;

  const pause = async (): Promise<void> => {
    const ms = Math.min(backoff, Math.max(0, remaining()));
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
    if (ms <= 0) return;
    event('backing off', { ms });
    await sleep(ms);
  };

  while (remaining() > 0) {
    try {
      // The common case (record published before the container starts) costs one request:
      // the version is read only after a first look came back empty.
      if (wait && canWait && seenVersion === undefined && !lookFirst) {
        try {
          seenVersion = await readVersion(versionUrl, remaining());
        } catch (e) {
          if (!(e instanceof MetadataHttpError && e.status === 404)) throw e;
          canWait = false;
          event('metadata has no version key: polling', { url: versionUrl });
        }
      }
      lookFirst = false;
      const outcome = await lookOnce(containersUrl, target, remaining());
      lastError = undefined;
      noList = 'noList' in outcome && outcome.noList === true;
      if ('record' in outcome) {
        event('metadata record found', { url: containersUrl, by: outcome.by, changes, ms: Math.round(nowMs() - started) });
        return outcome.record;
      }
      if (!wait) break;
      if (!canWait) {
        await pause();
        continue;
      }
      if (seenVersion === undefined) continue; // read the version, then look once more before waiting
      const budget = remaining();
      if (budget <= 0) break;
      const before = seenVersion;
      const t0 = nowMs();
      const maxWaitS = Math.max(1, Math.min(LONG_POLL_S, Math.floor(budget / 1000)));
      let next: unknown;
      const pollTimeoutMs = maxWaitS * 1000 + LONG_POLL_SLACK_MS;
      try {
        next = await longPoll(versionUrl, before, { maxWaitS, timeoutMs: Math.min(budget, pollTimeoutMs) });
      } catch (e) {
        // Cut short by our own deadline while the server was (rightly) holding it: not a failure.
        if (e instanceof MetadataTimeoutError && budget < pollTimeoutMs) break;
        throw e;
      }
      seenVersion = versionString(next, versionUrl);
      if (seenVersion !== before) {
        changes++;
        backoff = BACKOFF_FIRST_MS;
        event('metadata changed', { version: seenVersion, waitedMs: Math.round(nowMs() - t0) });
      } else if (nowMs() - t0 < maxWaitS * 500) {
        // The same value long before maxWait: this server does not long-poll. Poll gently instead.
        await pause();
      }
    } catch (e) {
      const message = e instanceof Error ? e.message : String(e);
      event('metadata request failed', { error: message });
      const final = finalError(e, opts.baseUrl);
      if (final) throw final;
      // A request cut short by our own deadline (its timeout was what the deadline left, and timers
      // may fire a little before the clock agrees) says less than the failure before it.
      const cutByDeadline = e instanceof MetadataTimeoutError && e.timeoutMs < REQUEST_TIMEOUT_MS;
      if (!(cutByDeadline && lastError !== undefined)) lastError = message;
      seenVersion = undefined; // after a failure nothing we saw is known to be current
      lookFirst = true; // and the next try looks at /containers before anything else
      if (cutByDeadline || remaining() <= 0) break;
      await pause();
    }
  }
  const who = describeTarget(target);
  const secs = Math.round((nowMs() - started) / 100) / 10;
  const absent = noList ? 'the service has no containers list (404 Not found)' : wait ? 'the record never appeared' : 'the record is absent';
  const why = lastError ? `last error: ${lastError}` : wait ? `${absent}; ${changes} metadata change(s) seen` : absent;
  throw new CniError(ERR_TRY_AGAIN_LATER, `no container with ${who} and a primary_ip in ${containersUrl} after ${secs} s`, why);
}

async function readVersion(url: string, budget: number): Promise<string> {
  return versionString(await httpGetJson(url, { timeoutMs: Math.min(REQUEST_TIMEOUT_MS, Math.max(1, budget)) }), url);
}

/** Errors no retry mends before the deadline, thrown at once: retrying would only cost the same again. */
function finalError(e: unknown, server: string): CniError | undefined {
  if (e instanceof CniError) return e; // the record itself is invalid
  if (e instanceof MetadataTooLargeError) return new CniError(ERR_TRY_AGAIN_LATER, `the metadata service ${server} sent an answer over the size cap`, e.message);
  return undefined;
}

async function lookOnce(url: string, target: LookupTarget, budget: number): Promise<Outcome> {
  // Record by record, and only the records that mention the target are parsed and checked: the
  // list of a large environment is never held whole, and other containers' records are not ours.
  const mentioning = [target.containerId, target.uuid, target.pod?.name].filter((v) => v !== undefined && v !== '').map((v) => JSON.stringify(v));
  // The best record so far: a record named by its ids wins over one found by its pod labels
  // wherever it is in the list; among equals the first counts. Invalid data in a record found by
  // its ids ends the lookup at once; in one found by its labels only if nothing better follows.
  let best: { rank: number; by: MatchedBy; record?: ContainerRecord; error?: unknown } | undefined;
  try {
    await httpGetObjectList(url, { timeoutMs: Math.min(REQUEST_TIMEOUT_MS, Math.max(1, budget)), mentioning }, (c) => {
      if (best?.rank === RANK_ID) return;
      const valid = validateMetadataContainers([c]); // coerces in place: before the ids are compared
      const m = matchOf(c, target);
      if (m === undefined || (best !== undefined && best.rank >= m.rank)) return;
      try {
        if (!valid) throw schemaError(c, url);
        if (hasPrimaryIp(c)) best = { ...m, record: checkRecord(c, url) };
      } catch (e) {
        if (m.rank === RANK_ID) throw e;
        best = { ...m, error: e };
      }
    });
  } catch (e) {
    // No containers key yet (a fresh answers file) is "not there yet", worth waiting for;
    // an unknown API version is not.
    if (e instanceof MetadataHttpError && e.status === 404 && !/Invalid version/i.test(e.body)) return { absent: true, noList: true };
    throw e;
  }
  if (best?.error !== undefined) throw best.error;
  return best?.record ? { record: best.record, by: best.by } : { absent: true };
}

/**
 * The target's record failing metadata-containers.schema.json is invalid data. (A record that
 * only mentions the target, in another record's label say, is not ours and not checked.)
 */
function schemaError(c: Record<string, unknown>, url: string): CniError {
  const e = validateMetadataContainers.errors?.[0];
  const path = (e?.instancePath ?? '').replace(/^\/0\//, ''); // "/0/dns/1": the record is validated alone
  return invalidField(c, path.split('/')[0] || 'record', `${path} ${e?.message ?? 'is invalid'}`, url);
}

/** How a record was found: by one of its ids, or by the Kubernetes pod labels. */
export type MatchedBy = 'external_id' | 'uuid' | 'pod uid' | 'pod';
/** Precedence: ids first, then the pod labels with the uid on both sides, then without it. */
const RANK_ID = 3;
const RANK_POD_UID = 2;
const RANK_POD = 1;

/**
 * How the record names the target, if it does: its external_id (CNI_CONTAINERID), its uuid
 * (RancherContainerUUID), or its labels io.kubernetes.pod.namespace and .name (K8S_POD_NAMESPACE,
 * K8S_POD_NAME) with io.kubernetes.pod.uid equal to K8S_POD_UID when both have one (a different
 * uid is another pod of that name: no match).
 */
export function matchOf(c: Record<string, unknown>, target: LookupTarget): { rank: number; by: MatchedBy } | undefined {
  if (c.external_id === target.containerId) return { rank: RANK_ID, by: 'external_id' };
  if (target.uuid !== undefined && target.uuid !== '' && c.uuid === target.uuid) return { rank: RANK_ID, by: 'uuid' };
  const pod = target.pod;
  const labels = c.labels;
  if (pod === undefined || pod.namespace === '' || pod.name === '' || typeof labels !== 'object' || labels === null || Array.isArray(labels)) return undefined;
  const l = labels as Record<string, unknown>;
  if (l[POD_NAMESPACE_LABEL] !== pod.namespace || l[POD_NAME_LABEL] !== pod.name) return undefined;
  const uid = l[POD_UID_LABEL];
  if (pod.uid === undefined || pod.uid === '' || typeof uid !== 'string' || uid === '') return { rank: RANK_POD, by: 'pod' };
  return uid === pod.uid ? { rank: RANK_POD_UID, by: 'pod uid' } : undefined;
}

function hasPrimaryIp(c: Record<string, unknown>): boolean {
  return typeof c.primary_ip === 'string' && c.primary_ip !== '';
}

/** The target's record once cattle has given it an address (the first such record of the list counts). */
export function matchesTarget(c: Record<string, unknown>, target: LookupTarget): boolean {
  return hasPrimaryIp(c) && matchOf(c, target) !== undefined;
}

/** "external_id abc, uuid u-1 or pod default/web-0 (uid 5f…)": every key a lookup tries. */
export function describeTarget(target: LookupTarget): string {
  const keys = [`external_id ${target.containerId}`];
  if (target.uuid) keys.push(`uuid ${target.uuid}`);
  const pod = target.pod;
  if (pod && pod.namespace !== '' && pod.name !== '') keys.push(`pod ${pod.namespace}/${pod.name}${pod.uid ? ` (uid ${pod.uid})` : ''}`);
  return keys.length === 1 ? keys[0]! : `${keys.slice(0, -1).join(', ')} or ${keys[keys.length - 1]!}`;
}

/**
 * The fields we use, each checked: the service is a network peer, not a trusted source. Invalid
 * data is a code-7 error naming the container and the field, at once: waiting will not fix it.
 */
export function checkRecord(c: Record<string, unknown>, url: string): ContainerRecord {
  const ip = String(c.primary_ip);
  if (strictIpVersion(ip) === 0) {
    const why = ip.includes('/') ? 'is a CIDR; metadata carries bare addresses' : 'is not an IP address';
    throw invalidField(c, 'primary_ip', `${JSON.stringify(ip)} ${why}`, url);
  }
  const record: ContainerRecord = { primary_ip: ip };
  const mac = c.primary_mac_address;
  if (typeof mac === 'string' && mac !== '') {
    if (!isValidMac(mac)) throw invalidField(c, 'primary_mac_address', `${JSON.stringify(mac)} is not a MAC address`, url);
    record.primary_mac_address = mac.toLowerCase();
  }
  if (Array.isArray(c.dns)) {
    const dns = (c.dns as string[]).filter((s) => s !== '');
    const bad = dns.find((s) => strictIpVersion(s) === 0);
    if (bad !== undefined) throw invalidField(c, 'dns', `${JSON.stringify(bad)} is not an IP address`, url);
    if (dns.length) record.dns = dns;
  }
  if (Array.isArray(c.dns_search)) {
    const search = (c.dns_search as string[]).filter((s) => s !== '');
    if (search.length) record.dns_search = search;
  }
  for (const k of ['uuid', 'external_id', 'name'] as const) {
    const v = c[k];
    if (typeof v === 'string' && v !== '') record[k] = v;
  }
  return record;
}

function invalidField(c: Record<string, unknown>, field: string, problem: string, url: string): CniError {
  return new CniError(ERR_INVALID_CONFIG, `invalid field "${field}" in the metadata record of container ${containerName(c)}`, `${problem} (in ${url})`);
}

/** "abc123 (name web-1, uuid 5e4d…)": the ids a user can look the container up by. */
function containerName(c: Record<string, unknown>): string {
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const id = text(c.external_id) ?? text(c.uuid) ?? '(no external_id)';
  const also = (['name', 'uuid'] as const).filter((k) => text(c[k]) !== undefined && c[k] !== id).map((k) => `${k} ${String(c[k])}`);
  return also.length ? `${id} (${also.join(', ')})` : id;
}

function versionString(v: unknown, url: string): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  throw new Error(`unexpected answer from ${url}: expected a version string, got ${JSON.stringify(v)?.slice(0, 60)}`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
