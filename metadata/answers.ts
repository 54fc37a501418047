// The classic rancher-metadata answers: `{"<version>": {"<client IP>" | "default": {…}}}`,
// read from JSON or YAML, checked, and answered per client.
import type { Node as YamlNode } from 'yaml';

export const KNOWN_VERSIONS: readonly string[] = Object.freeze(['2015-07-25', '2015-12-19', '2016-07-29']);
export const DEFAULT_CLIENT = 'default';

export type Obj = Record<string, unknown>;
/** version → client (IP or "default") → that client's tree. */
export type Answers = Record<string, Record<string, Obj>>;

export class AnswersError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AnswersError';
  }
}

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isYamlFile(file: string): boolean {
  return /\.ya?ml$/i.test(file);
}

// An anchor may be aliased this many times (times the aliases nested in it): generous for
// answers that share records, still a stop for "billion laughs" documents.
const MAX_ALIAS_COUNT = 10_000;

/**
 * One YAML document (YAML 1.2 core schema; anchors, aliases, `<<` merge keys, block scalars, as
 * rancher-metadata's own example answers use) as plain JSON-like values; aliases share their value.
 * The `yaml` package is imported here, on first use, so nothing but a YAML answers file loads it.
 * Errors read "line L, column C: problem". Refused: several documents, tags beyond the core ones
 * (!!binary, !!set, custom tags…), collections as keys and an alias inside its own anchor.
 */
export async function parseYaml(text: string): Promise<unknown> {
  const { LineCounter, isAlias, isCollection, isNode, isPair, parseDocument, visit } = await import('yaml');
  const lineCounter = new LineCounter();
  const fail = (offset: number | undefined, message: string): never => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    throw new Error(`line ${line}, column ${col}: ${message}`);
  };
  const doc = parseDocument(text, {
    schema: 'core', merge: true, resolveKnownTags: false, uniqueKeys: true, prettyErrors: false, logLevel: 'error', lineCounter,
  });
  const problem = doc.errors[0] ?? doc.warnings[0]; // warnings: unknown tags
  if (problem) fail(problem.pos[0], problem.code === 'MULTIPLE_DOCS' ? 'only one YAML document is supported' : problem.message);
  // Checked here, with a line, what toJS() would refuse without one or turn into a cycle.
  const anchors = new Map<string, YamlNode>(); // name → the node it names (the latest one before here)
  visit(doc, (_key, node, path) => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      if (target === undefined) fail(node.range?.[0], `unknown alias *${node.source}`);
      else if (path.includes(target)) fail(node.range?.[0], `alias *${node.source} inside its own anchor`);
    } else if (isPair(node)) {
      if (isCollection(node.key)) fail(node.key.range?.[0], 'a key must be a scalar');
    } else if (isNode(node) && node.anchor) {
      anchors.set(node.anchor, node);
    }
  });
  return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
}

/** Parse the text of an answers file; errors name the file and the problem. */
export async function parseAnswersText(text: string, file: string): Promise<Answers> {
  let raw: unknown;
  if (isYamlFile(file)) {
    try {
      raw = await parseYaml(text);
    } catch (e) {
      throw new AnswersError(`${file}: invalid YAML: ${(e as Error).message}`);
    }
  } else {
    try {
      raw = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (e) {
      throw new AnswersError(`${file}: invalid JSON: ${(e as Error).message}`);
    }
  }
  return checkAnswers(raw, file);
}

/** The shape check: versions and clients are objects (anything below is free). */
export function checkAnswers(raw: unknown, file: string): Answers {
  if (raw === null || raw === undefined) return {};
  if (!isObj(raw)) throw new AnswersError(`${file}: the answers must be an object of versions, e.g. {"2015-12-19": {"default": {…}}}`);
  if (['hosts', 'networks', 'containers'].some((k) => Object.hasOwn(raw, k))) {
    throw new AnswersError(`${file}: this is an environment description (hosts, networks, containers): serve it with --environment`);
  }
  for (const [version, clients] of Object.entries(raw)) {
    if (!isObj(clients)) throw new AnswersError(`${file}: "${version}" must be an object of clients ("default" or a client IP)`);
    for (const [client, tree] of Object.entries(clients)) {
      if (!isObj(tree)) throw new AnswersError(`${file}: "${version}"."${client}" must be an object`);
    }
  }
  return raw as Answers;
}

/** Answers of a missing file: every known version, empty, so `version` can still be long-polled. */
export function emptyAnswers(): Answers {
  return Object.fromEntries(KNOWN_VERSIONS.map((v) => [v, { [DEFAULT_CLIENT]: {} }]));
}

/**
 * What the server serves: defaults copied into each client's tree (top-level keys the client lacks,
 * as rancher-metadata does), and `version` set to the store's revision in every tree so each
 * reload wakes long-polls whatever the file says.
 */
export function prepareAnswers(answers: Answers, revision: string): Answers {
  const out: Answers = {};
  const shared = new Map<object, Record<string, Obj>>(); // YAML `latest: *alias` shares a version: keep it shared
  for (const [version, clients] of Object.entries(answers)) {
    let served = shared.get(clients);
    if (!served) {
      const defaults = clients[DEFAULT_CLIENT] ?? {};
      served = {};
      for (const [client, tree] of Object.entries(clients)) {
        served[client] = client === DEFAULT_CLIENT ? { ...tree, version: revision } : { ...defaults, ...tree, version: revision };
      }
      shared.set(clients, served);
    }
    out[version] = served;
  }
  return out;
}

/** The version to serve: itself, or for `latest` without its own entry the highest one. */
export function resolveVersion(answers: Answers, version: string): string | undefined {
  if (Object.hasOwn(answers, version)) return version;
  if (version !== 'latest') return undefined;
  const versions = Object.keys(answers).sort();
  return versions.length ? versions[versions.length - 1] : undefined;
}

/** The tree a client sees: its own entry, else `default`. */
export function clientTree(answers: Answers, version: string, clientIp: string): Obj | undefined {
  const clients = answers[version];
  if (!clients) return undefined;
  return (Object.hasOwn(clients, clientIp) ? clients[clientIp] : undefined) ?? clients[DEFAULT_CLIENT];
}

// Array segments may name an element by these keys instead of its index.
const ARRAY_KEYS = ['name', 'uuid'];

export type Lookup = { found: true; value: unknown } | { found: false };

/** Walk `segments` from `root`; a failed walk is retried with every segment lowercased. */
export function lookupPath(root: unknown, segments: readonly string[]): Lookup {
  const exact = walk(root, segments);
  if (exact.found) return exact;
  const lower = segments.map((s) => s.toLowerCase());
  return lower.some((s, i) => s !== segments[i]) ? walk(root, lower) : exact;
}

function walk(root: unknown, segments: readonly string[]): Lookup {
  let node = root;
  for (const key of segments) {
    if (Array.isArray(node)) {
      if (/^[+-]?\d+$/.test(key)) {
        const i = Number(key);
        if (!(i >= 0 && i < node.length)) return { found: false };
        node = node[i];
      } else {
        const hit = node.find((child) => isObj(child) && ARRAY_KEYS.some((k) => child[k] === key));
        if (hit === undefined) return { found: false };
        node = hit;
      }
    } else if (isObj(node)) {
      if (!Object.hasOwn(node, key)) return { found: false };
      node = node[key];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: node };
}
