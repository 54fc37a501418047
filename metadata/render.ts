// Content negotiation and the three answer formats of rancher-metadata: JSON,
// YAML, and the plain-text listing (scalars raw; objects as sorted `key` /
// `key/` lines; arrays as `index=name`, `index/` or `index` lines).
import { isObj } from './answers.ts';

export type Format = 'text' | 'json' | 'yaml';

// The offers in rancher-metadata's order: on a tie the earlier one wins, so `*/*` means text.
const OFFERS: readonly [string, Format][] = [
  ['text/plain', 'text'],
  ['application/json', 'json'],
  ['application/yaml', 'yaml'],
  ['application/x-yaml', 'yaml'],
  ['text/yaml', 'yaml'],
  ['text/x-yaml', 'yaml'],
];

interface AcceptRange {
  type: string;
  subtype: string;
  q: number;
}

function parseAccept(header: string): AcceptRange[] {
  const out: AcceptRange[] = [];
  for (const part of header.split(',')) {
    const [range, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    if (!range) continue;
    const [type, subtype] = range.split('/');
    if (!type || !subtype) continue;
    let q = 1;
    for (const p of params) {
      const m = /^q=([0-9.]+)$/.exec(p);
      if (m) q = Number(m[1]);
    }
    out.push({ type, subtype, q: Number.isFinite(q) ? q : 0 });
  }
  return out;
}

/** The answer format for an Accept header: best quality, then the most specific range, then offer order. */
export function negotiate(accept: string | undefined): Format {
  if (!accept) return 'text';
  const ranges = parseAccept(accept);
  let best: Format = 'text';
  let bestQ = -1;
  let bestSpecificity = -1;
  for (const [offer, format] of OFFERS) {
    const [type, subtype] = offer.split('/') as [string, string];
    let q = -1;
    let specificity = -1;
    for (const r of ranges) {
      const s = r.type === type && r.subtype === subtype ? 3 : r.type === type && r.subtype === '*' ? 2 : r.type === '*' && r.subtype === '*' ? 1 : 0;
      if (s > specificity) {
        specificity = s;
        q = r.q;
      }
    }
    if (specificity <= 0 || q <= 0) continue;
    if (q > bestQ || (q === bestQ && specificity > bestSpecificity)) {
      best = format;
      bestQ = q;
      bestSpecificity = specificity;
    }
  }
  return best;
}

export const CONTENT_TYPES: Record<Format, string> = {
  text: 'text/plain; charset=utf-8',
  json: 'application/json',
  yaml: 'application/yaml',
};

// YAML comes from the `yaml` package, imported on first use: a server that is never asked for
// YAML does not load it, and no plugin's start evaluates it (the bundle runs its top level lazily).
type YamlLib = typeof import('yaml');
let yamlLib: YamlLib | undefined;

/** Load the YAML library once; `renderValue(…, 'yaml')` and `stringifyYaml` need it loaded. */
export async function loadYaml(): Promise<void> {
  yamlLib ??= await import('yaml');
}

/** Whether answering in `format` needs `loadYaml()` first. */
export function needsLoading(format: Format): boolean {
  return format === 'yaml' && yamlLib === undefined;
}

// What rancher-metadata's Go YAML (gopkg.in/yaml.v2) writes: map keys sorted, a sequence under a
// key at the key's indent, no line folding, shared values written out again (no anchors). A
// string is quoted ("…") when a plain scalar would read back as something else in YAML 1.2 core
// or in YAML 1.1, which Go's yaml.v2 speaks ("yes", "on", "2015-12-19", "1_000" stay strings).
const YAML_OUT = {
  schema: 'core',
  compat: 'yaml-1.1',
  sortMapEntries: true,
  indentSeq: false,
  lineWidth: 0,
  aliasDuplicateObjects: false,
  singleQuote: false,
} as const;

/** `value` as a YAML document (after `loadYaml()`). */
export function stringifyYaml(value: unknown): string {
  if (!yamlLib) throw new Error('stringifyYaml: the YAML library is not loaded (await loadYaml() first)');
  return yamlLib.stringify(value ?? null, YAML_OUT);
}

/** The body of a successful answer. */
export function renderValue(value: unknown, format: Format): string {
  switch (format) {
    case 'json':
      return JSON.stringify(value ?? null);
    case 'yaml':
      return stringifyYaml(value);
    case 'text':
      return renderText(value);
  }
}

/** The body of an error: `{"code","message","type":"error"}` as JSON or YAML, the bare message as text. */
export function renderError(message: string, status: number, format: Format): string {
  const obj = { code: status, message, type: 'error' };
  if (format === 'json') return `${JSON.stringify(obj)}\n`;
  if (format === 'yaml') return stringifyYaml(obj);
  return `${message}\n`;
}

/** Go's url.QueryEscape: what the listing uses for keys and names. */
export function queryEscape(s: string): string {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, '+');
}

const LISTING_NAME_KEYS = ['name', 'uuid'];

export function renderText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return formatNumber(value);
  if (Array.isArray(value)) {
    return value
      .map((child, i) => {
        if (isObj(child)) {
          const key = LISTING_NAME_KEYS.find((k) => typeof child[k] === 'string');
          if (key) return `${i}=${queryEscape(child[key] as string)}\n`;
        }
        return isObj(child) || Array.isArray(child) ? `${i}/\n` : `${i}\n`;
      })
      .join('');
  }
  if (isObj(value)) {
    return Object.entries(value)
      .map(([k, v]) => `${queryEscape(k)}${isObj(v) || Array.isArray(v) ? '/' : ''}\n`)
      .sort()
      .join('');
  }
  return String(value);
}

/** Numbers as Go's text listing prints them: no exponent, no trailing zeros. */
function formatNumber(n: number): string {
  if (Number.isInteger(n)) return Number.isSafeInteger(n) ? String(n) : BigInt(n).toString();
  if (!Number.isFinite(n)) return String(n);
  return n.toFixed(6).replace(/0+$/, '').replace(/\.$/, '');
}
