// cattle-ptp configuration. Schema: conf-examples/schemas/cattle-ptp.schema.json
// (defaults live there).
import { type CattlePtpConf, validateCattlePtp } from '../../gen/validators.js';
import { isPlainObject } from '../../lib/cni/config.ts';
import { CniError, ERR_INVALID_CONFIG } from '../../lib/cni/errors.ts';
import { checkArgs, requestedMac, validateWith } from '../../lib/plugin-config.ts';
import type { CniRequest } from '../../lib/skel.ts';

/** The schema's fields, as validated (types generated from the schema at build time). */
type PtpConfFields = CattlePtpConf;

export interface PtpConfig extends PtpConfFields {
  network: string;
  /** Container-side MAC asked for by the runtime, if any. */
  mac?: string;
  /** Always from IPAM: a point-to-point pod without addresses has nothing to route. */
  addressing: 'ipam';
}

export function loadPtpConfig(req: CniRequest): PtpConfig {
  // Checked before the schema so the message names the field, as for the bridge.
  if (!isPlainObject(req.config.ipam)) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "ipam"', 'an ipam section with a type is required');
  }
  const f = validateWith<PtpConfFields>(validateCattlePtp, req.config);
  const hostVethMac = f.hostVethMac.toLowerCase();
  // A group address cannot be a link's own: the kernel would refuse it after the veth exists.
  if (parseInt(hostVethMac.slice(0, 2), 16) & 1) {
    throw new CniError(ERR_INVALID_CONFIG, 'invalid configuration field "hostVethMac"', `${f.hostVethMac} is a multicast address`);
  }
  checkArgs(req.args);
  return { ...f, hostVethMac, network: req.config.name, mac: requestedMac(req.config, req.args), addressing: 'ipam' };
}
