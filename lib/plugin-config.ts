// Config plumbing shared by our plugins and IPAM: run a precompiled schema
// validator (which also coerces Rancher's string numbers/booleans and fills
// defaults) and turn its first error into a code-7 CNI error naming the
// field; the CNI_ARGS keys we understand; the container MAC a runtime asks for.
import { type ArgPair, argValue, checkKnownArgs } from './cni/args.ts';
import { argsCni, type NetConf, runtimeConfigValue } from './cni/config.ts';
import { CniError, ERR_INVALID_CONFIG } from './cni/errors.ts';
import { isValidMac } from './ip.ts';

/** A precompiled ajv validator (gen/validators.js, made at build time from conf-examples/schemas). */
export interface Validator {
  (data: unknown): boolean;
  errors?: { instancePath: string; keyword: string; message?: string; params: Record<string, unknown> }[] | null;
}

export function validateWith<T>(validate: Validator, value: unknown, where = ''): T {
  const copy = structuredClone(value);
  if (!validate(copy)) {
    const e = validate.errors?.[0];
    const field = `${where}${e?.instancePath ? e.instancePath.slice(1).replace(/\//g, '.') : ''}`;
    const extra = e?.keyword === 'enum' ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : '';
    throw new CniError(ERR_INVALID_CONFIG, field ? `invalid configuration field "${field}"` : 'invalid configuration', `${e?.message ?? 'invalid'}${extra}`);
  }
  return copy as T;
}

/** CNI_ARGS keys our plugins and IPAM understand, plus what Kubernetes and cniglue send. */
export const KNOWN_ARGS = [
  'MAC', 'MACAddress', 'LinkMTUOverhead', 'IPAddress', 'RancherContainerUUID', 'DOCKER', 'IP', 'GATEWAY',
  'K8S_POD_NAMESPACE', 'K8S_POD_NAME', 'K8S_POD_INFRA_CONTAINER_ID', 'K8S_POD_UID',
];

export function checkArgs(args: ArgPair[]): void {
  checkKnownArgs(args, KNOWN_ARGS);
}

/** Container MAC: runtimeConfig.mac, then args.cni.mac, then CNI_ARGS MAC or MACAddress. */
export function requestedMac(conf: NetConf, args: ArgPair[]): string | undefined {
  const candidates: [string, unknown][] = [
    ['runtimeConfig.mac', runtimeConfigValue(conf, 'mac')],
    ['args.cni.mac', argsCni(conf).mac],
    ['CNI_ARGS MAC', argValue(args, 'MAC')],
    ['CNI_ARGS MACAddress', argValue(args, 'MACAddress')],
  ];
  for (const [where, v] of candidates) {
    if (v === undefined || v === '') continue;
    if (typeof v !== 'string' || !isValidMac(v)) throw new CniError(ERR_INVALID_CONFIG, `invalid MAC address in ${where}`, String(v));
    return v.toLowerCase();
  }
  return undefined;
}
