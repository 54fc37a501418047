// Which CNI network a Docker container belongs to, from its labels and its
// NetworkMode (README: Docker (cniglue); rancher/rancher#9700): a container that shares the
// host's or another container's network namespace is never networked, even
// when a label asks for it.

export const LABEL_NETWORK = 'io.rancher.cni.network';
export const LABEL_LEGACY_NETWORK = 'io.rancher.container.network';
/** The network a legacy-labelled container goes to. */
export const LEGACY_NETWORK = 'managed';
/** The network of a container whose NetworkMode is empty or `default`. */
export const DEFAULT_NETWORK = 'default';

/** What selection needs to know about a container. */
export interface ContainerFacts {
  labels: Readonly<Record<string, string>>;
  /** HostConfig.NetworkMode as Docker reports it ('' when absent). */
  networkMode: string;
}

export type SelectionSource = 'label' | 'legacy-label' | 'network-mode';

export type Selection =
  | { network: string; source: SelectionSource }
  | { skip: string };

/** Network names become directory names (`<root>/<net>.d`): nothing that could leave the root. */
const NETWORK_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export class SelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SelectionError';
  }
}

function checked(network: string, where: string): string {
  if (!NETWORK_NAME_RE.test(network) || network.length > 200) {
    throw new SelectionError(`invalid network name ${JSON.stringify(network)} from ${where}: use letters, digits, '_', '.', '-' (not starting with '.', '_' or '-')`);
  }
  return network;
}

/**
 * The network of a container, or why it is left alone. Order: label
 * `io.rancher.cni.network`; legacy label `io.rancher.container.network=true`
 * (→ `managed`); else the NetworkMode (`host`, `container:*`, `none` skipped,
 * empty or `default` → `default`). Throws SelectionError for a name that
 * cannot be a configuration directory.
 */
export function selectNetwork(c: ContainerFacts): Selection {
  const mode = c.networkMode.trim();
  if (mode === 'host') return { skip: 'shares the host network namespace (NetworkMode host)' };
  if (mode.startsWith('container:')) return { skip: `shares the network namespace of ${mode.slice('container:'.length) || 'another container'} (NetworkMode ${mode})` };
  const label = c.labels[LABEL_NETWORK]?.trim();
  if (label) return { network: checked(label, `label ${LABEL_NETWORK}`), source: 'label' };
  if (c.labels[LABEL_LEGACY_NETWORK]?.trim().toLowerCase() === 'true') return { network: LEGACY_NETWORK, source: 'legacy-label' };
  if (mode === 'none') return { skip: `NetworkMode none and no ${LABEL_NETWORK} label` };
  if (mode === '' || mode === 'default') return { network: DEFAULT_NETWORK, source: 'network-mode' };
  return { network: checked(mode, 'NetworkMode'), source: 'network-mode' };
}
