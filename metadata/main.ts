// `cattle-metadata`: the Rancher metadata service (serve) and a small CLI to
// add or remove container records in its answers file.
import { isIP } from 'node:net';

const USAGE = `Usage:
  cattle-metadata [serve] --answers FILE [--listen ADDR:PORT] [--reload-listen ADDR:PORT|none] [--xff]
  cattle-metadata add-container --answers FILE --external-id ID --ip IP [--mac MAC] [--uuid UUID]
                                [--name NAME] [--dns IP,…] [--dns-search DOMAIN,…]
  cattle-metadata remove-container --answers FILE (--external-id ID | --uuid UUID | --name NAME)

serve             answer the rancher-metadata API from FILE (JSON, or YAML when it ends in .yml/.yaml)
                  --listen         default 169.254.169.250:80 (the address cattle containers use)
                  --reload-listen  POST /v1/reload here; default 127.0.0.1:8112, "none" to disable
                  --xff            take the client address from X-Forwarded-For
                  The file is reloaded on SIGHUP, on POST /v1/reload and when it changes; each
                  reload bumps /<version>/version. A bad file is reported and the old answers kept.
add-container     add (or replace) a container record in every version's default containers
remove-container  remove matching container records
`;

const FLAGS: Record<string, 'value' | 'bool'> = {
  answers: 'value', listen: 'value', 'reload-listen': 'value', xff: 'bool',
  'external-id': 'value', ip: 'value', mac: 'value', uuid: 'value', name: 'value', dns: 'value', 'dns-search': 'value',
};

class UsageError extends Error {}

export function parseFlags(args: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) throw new UsageError(`unexpected argument "${arg}"`);
    const [, name, inline] = m as unknown as [string, string, string | undefined];
    const kind = FLAGS[name];
    if (!kind) throw new UsageError(`unknown option --${name}`);
    if (kind === 'bool') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      out[name] = true;
      continue;
    }
    const value = inline ?? args[++i];
    if (value === undefined || (inline === undefined && value.startsWith('--'))) throw new UsageError(`--${name} needs a value`);
    out[name] = value;
  }
  return out;
}

function str(flags: Record<string, string | true>, name: string): string | undefined {
  const v = flags[name];
  return typeof v === 'string' ? v : undefined;
}

function need(flags: Record<string, string | true>, name: string): string {
  const v = str(flags, name);
  if (v === undefined || v === '') throw new UsageError(`--${name} is required`);
  return v;
}

function list(v: string | undefined): string[] | undefined {
  return v?.split(',').map((s) => s.trim()).filter(Boolean);
}

export async function main(args: string[]): Promise<number> {
  const [first, ...rest] = args;
  try {
    switch (first) {
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return 0;
      case 'add-container':
        return await addCommand(parseFlags(rest));
      case 'remove-container':
        return await removeCommand(parseFlags(rest));
      case 'serve':
        return await serveCommand(parseFlags(rest));
      default:
        if (first === undefined) {
          process.stderr.write(USAGE);
          return 2;
        }
        if (!first.startsWith('--')) throw new UsageError(`unknown command "${first}"`);
        return await serveCommand(parseFlags(args));
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`cattle-metadata: ${e.message}\n${USAGE}`);
      return 2;
    }
    process.stderr.write(`cattle-metadata: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

async function addCommand(flags: Record<string, string | true>): Promise<number> {
  const file = need(flags, 'answers');
  const ip = need(flags, 'ip');
  if (isIP(ip.split('/')[0]!) === 0) throw new UsageError(`--ip: not an IP address: ${ip}`);
  const mac = str(flags, 'mac');
  if (mac !== undefined && !/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(mac)) throw new UsageError(`--mac: not a MAC address: ${mac}`);
  const dns = list(str(flags, 'dns'));
  const badDns = dns?.find((d) => isIP(d) === 0);
  if (badDns !== undefined) throw new UsageError(`--dns: not an IP address: ${badDns}`);
  const { addContainer } = await import('./records.ts');
  const uuid = str(flags, 'uuid');
  const name = str(flags, 'name');
  const dnsSearch = list(str(flags, 'dns-search'));
  const record = await addContainer(file, {
    externalId: need(flags, 'external-id'),
    ip,
    ...(mac ? { mac } : {}),
    ...(uuid ? { uuid } : {}),
    ...(name ? { name } : {}),
    ...(dns ? { dns } : {}),
    ...(dnsSearch ? { dnsSearch } : {}),
  });
  process.stdout.write(`${JSON.stringify(record)}\n`);
  return 0;
}

async function removeCommand(flags: Record<string, string | true>): Promise<number> {
  const file = need(flags, 'answers');
  const { removeContainer } = await import('./records.ts');
  const externalId = str(flags, 'external-id');
  const uuid = str(flags, 'uuid');
  const name = str(flags, 'name');
  const removed = await removeContainer(file, {
    ...(externalId ? { externalId } : {}),
    ...(uuid ? { uuid } : {}),
    ...(name ? { name } : {}),
  });
  process.stdout.write(`removed ${removed} record(s)\n`);
  return removed > 0 ? 0 : 1;
}

async function serveCommand(flags: Record<string, string | true>): Promise<number> {
  const { serve } = await import('./serve.ts');
  const reload = str(flags, 'reload-listen') ?? '127.0.0.1:8112';
  return serve({
    answers: need(flags, 'answers'),
    listen: str(flags, 'listen') ?? '169.254.169.250:80',
    reloadListen: reload === 'none' ? undefined : reload,
    xff: flags.xff === true,
  });
}
