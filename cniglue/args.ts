// CNI_ARGS for a Docker container, in Rancher's fixed order (README: Docker (cniglue)):
// IgnoreUnknown=1;DOCKER=true, then one pair per Rancher label that is set.

export const LABEL_UUID = 'io.rancher.container.uuid';
export const LABEL_MTU_OVERHEAD = 'io.rancher.cni.link_mtu_overhead';
export const LABEL_MAC = 'io.rancher.container.mac_address';
export const LABEL_IP = 'io.rancher.container.ip';

/** Label → CNI_ARGS key, in the order the pairs are sent. */
export const LABEL_ARGS: readonly (readonly [label: string, key: string])[] = [
  [LABEL_UUID, 'RancherContainerUUID'],
  [LABEL_MTU_OVERHEAD, 'LinkMTUOverhead'],
  [LABEL_MAC, 'MACAddress'],
  [LABEL_IP, 'IPAddress'],
];

export class ArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArgsError';
  }
}

/**
 * The CNI_ARGS pairs for a container's labels. A label that is missing or blank
 * leaves its key out; a value that CNI_ARGS cannot carry (`;`, `=`, control
 * characters) is an error rather than a silently different argument list.
 */
export function cniArgsFor(labels: Readonly<Record<string, string>>): [string, string][] {
  const pairs: [string, string][] = [['IgnoreUnknown', '1'], ['DOCKER', 'true']];
  for (const [label, key] of LABEL_ARGS) {
    const raw = labels[label];
    if (raw === undefined) continue;
    const value = raw.trim();
    if (value === '') continue;
    if (/[;=\u0000-\u001f]/.test(value)) {
      throw new ArgsError(`label ${label} has a value CNI_ARGS cannot carry: ${JSON.stringify(raw)}`);
    }
    pairs.push([key, value]);
  }
  return pairs;
}

/** The CNI_ARGS string as the runtime sends it. */
export function formatCniArgs(pairs: readonly (readonly [string, string])[]): string {
  return pairs.map(([k, v]) => `${k}=${v}`).join(';');
}
