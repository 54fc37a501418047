// The YAML that answers files use, without a dependency: block mappings and
// sequences, plain and quoted scalars, one-line flow collections, `|`/`>`
// block scalars, comments, anchors and aliases (rancher-metadata's own example
// answers.yml uses them). Not a general YAML implementation: tags, multi-line
// plain scalars and multiple documents are refused with a line number.

export class YamlError extends Error {
  constructor(message: string, line?: number) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.name = 'YamlError';
  }
}

interface Line {
  indent: number;
  text: string;
  no: number;
}

export function parseYaml(source: string): unknown {
  const lines = toLines(source);
  if (lines.length === 0) return null;
  const p = new Parser(lines);
  const value = p.node(0);
  if (p.i < lines.length) throw new YamlError(`unexpected content ${JSON.stringify(lines[p.i]!.text.slice(0, 40))}`, lines[p.i]!.no);
  return value;
}

function toLines(source: string): Line[] {
  const out: Line[] = [];
  let docs = 0;
  source.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((raw, idx) => {
    if (raw.includes('\t') && /^\s*\t/.test(raw)) throw new YamlError('tabs cannot indent YAML', idx + 1);
    const text = stripComment(raw).trimEnd();
    const body = text.trimStart();
    if (body === '' || body.startsWith('%')) {
      out.push({ indent: -1, text: '', no: idx + 1 }); // blank: kept for block scalars
      return;
    }
    if (body === '---' || body.startsWith('--- ')) {
      if (++docs > 1 || out.some((l) => l.indent >= 0)) throw new YamlError('only one YAML document is supported', idx + 1);
      const rest = body.slice(3).trim();
      if (rest) out.push({ indent: 0, text: rest, no: idx + 1 });
      return;
    }
    if (body === '...') return;
    out.push({ indent: text.length - body.length, text: body, no: idx + 1 });
  });
  // Blank lines at the end carry nothing.
  while (out.length && out[out.length - 1]!.indent < 0) out.pop();
  return out;
}

/** Drops a `# comment` that is outside quotes and preceded by whitespace (or starts the line). */
function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:[{,-]/.test(line[i - 1]!)) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]!))) {
      return line.slice(0, i);
    }
  }
  return line;
}

class Parser {
  i = 0;
  private readonly lines: Line[];
  private readonly anchors = new Map<string, unknown>();

  constructor(lines: Line[]) {
    this.lines = lines;
  }

  private peek(): Line | undefined {
    while (this.i < this.lines.length && this.lines[this.i]!.indent < 0) this.i++;
    return this.lines[this.i];
  }

  /** The node starting at the next line, which must be indented at least `min`. */
  node(min: number): unknown {
    const line = this.peek();
    if (!line || line.indent < min) return null;
    if (line.text === '-' || line.text.startsWith('- ')) return this.sequence(line.indent);
    if (keySplit(line.text) !== undefined) return this.mapping(line.indent);
    this.i++;
    return this.inline(line.text, line, line.indent);
  }

  private sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    for (let line = this.peek(); line && line.indent === indent && (line.text === '-' || line.text.startsWith('- ')); line = this.peek()) {
      const rest = line.text.slice(1).trimStart();
      if (rest === '') {
        this.i++;
        out.push(this.node(indent + 1));
      } else {
        // "- key: v" / "- - x": the rest is a node that starts at its own column.
        this.lines[this.i] = { indent: indent + (line.text.length - rest.length), text: rest, no: line.no };
        out.push(this.valueAt(this.lines[this.i]!, indent + 1));
      }
    }
    return out;
  }

  private mapping(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let line = this.peek(); line && line.indent === indent; line = this.peek()) {
      const split = keySplit(line.text);
      if (split === undefined) throw new YamlError(`expected "key: value", got ${JSON.stringify(line.text.slice(0, 40))}`, line.no);
      const key = scalarKey(split.key, line.no);
      if (key === '<<') throw new YamlError('merge keys (<<) are not supported', line.no);
      if (Object.hasOwn(out, key)) throw new YamlError(`duplicate key ${JSON.stringify(key)}`, line.no);
      this.i++;
      // A mapping's block value may be a sequence at the key's own indent.
      out[key] = this.value(split.value, line, indent + 1, indent);
    }
    return out;
  }

  /** A line that is itself the start of a node (sequence item content). */
  private valueAt(line: Line, min: number): unknown {
    // "- &a key: v": the anchor names the mapping that starts after it.
    const a = /^&([^\s,[\]{}]+)\s+(.+)$/.exec(line.text);
    if (a && (keySplit(a[2]!) !== undefined || a[2]!.startsWith('- '))) {
      this.lines[this.i] = { indent: line.indent + (line.text.length - a[2]!.length), text: a[2]!, no: line.no };
      const v = this.valueAt(this.lines[this.i]!, min);
      this.anchors.set(a[1]!, v);
      return v;
    }
    if (line.text === '-' || line.text.startsWith('- ')) return this.sequence(line.indent);
    if (keySplit(line.text) !== undefined) return this.mapping(line.indent);
    this.i++;
    return this.value(line.text, line, min, line.indent);
  }

  /** The value after "key:" or "-": inline text, or a block on the following lines. */
  private value(text: string, line: Line, min: number, seqIndent: number): unknown {
    let rest = text;
    let anchor: string | undefined;
    const a = /^&([^\s,[\]{}]+)\s*(.*)$/.exec(rest);
    if (a) {
      anchor = a[1];
      rest = a[2]!;
    }
    let v: unknown;
    if (rest === '') {
      const next = this.peek();
      const seqHere = next && next.indent === seqIndent && (next.text === '-' || next.text.startsWith('- '));
      v = seqHere ? this.sequence(seqIndent) : this.node(min);
    } else if (/^[|>]/.test(rest)) {
      v = this.blockScalar(rest, line, min);
    } else {
      v = this.inline(rest, line, min);
    }
    if (anchor !== undefined) this.anchors.set(anchor, v);
    return v;
  }

  private inline(text: string, line: Line, _min: number): unknown {
    if (text.startsWith('*')) {
      const name = text.slice(1);
      if (!this.anchors.has(name)) throw new YamlError(`unknown alias *${name}`, line.no);
      return this.anchors.get(name);
    }
    if (text.startsWith('!')) throw new YamlError('tags are not supported', line.no);
    if (text.startsWith('[') || text.startsWith('{')) {
      const flow = new FlowParser(text, line.no, this.anchors);
      const v = flow.value();
      flow.end();
      return v;
    }
    if (text.startsWith('"') || text.startsWith("'")) {
      const [s, used] = quoted(text, 0, line.no);
      if (text.slice(used).trim() !== '') throw new YamlError(`unexpected text after a quoted string: ${JSON.stringify(text.slice(used, used + 20))}`, line.no);
      return s;
    }
    const next = this.peek();
    if (next && next.indent > line.indent && keySplit(next.text) === undefined && !next.text.startsWith('- ')) {
      throw new YamlError('multi-line plain scalars are not supported: quote the value', next.no);
    }
    return plainScalar(text);
  }

  private blockScalar(header: string, line: Line, min: number): string {
    const m = /^([|>])([+-]?)(\d?)([+-]?)$/.exec(header);
    if (!m) throw new YamlError(`invalid block scalar header ${JSON.stringify(header)}`, line.no);
    const folded = m[1] === '>';
    const chomp = m[2] || m[4];
    const body: { indent: number; raw: string }[] = [];
    let indent = m[3] ? line.indent + Number(m[3]) : -1;
    while (this.i < this.lines.length) {
      const l = this.lines[this.i]!;
      if (l.indent >= 0) {
        if (indent < 0) indent = l.indent;
        if (l.indent < indent || l.indent < min) break;
      }
      body.push({ indent: l.indent, raw: l.indent < 0 ? '' : ' '.repeat(l.indent - indent) + l.text });
      this.i++;
    }
    while (body.length && body[body.length - 1]!.indent < 0) body.pop();
    let text = '';
    body.forEach((b, k) => {
      if (k === 0) text = b.raw;
      else if (folded && b.raw !== '' && body[k - 1]!.raw !== '' && !b.raw.startsWith(' ')) text += ` ${b.raw}`;
      else text += `\n${b.raw}`;
    });
    if (chomp === '-') return text;
    return body.length ? `${text}\n` : '';
  }
}

/** "key: value" split outside quotes and flow brackets; undefined when the line is not a mapping entry. */
function keySplit(text: string): { key: string; value: string } | undefined {
  if (text.startsWith('"') || text.startsWith("'")) {
    const [, used] = quoted(text, 0, 0, true);
    if (used < 0) return undefined;
    const after = text.slice(used);
    if (after === ':' || after.startsWith(': ')) return { key: text.slice(0, used), value: after.slice(1).trim() };
    return undefined;
  }
  if (/^[[{*&!|>]/.test(text)) return undefined;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === ':' && (i === text.length - 1 || text[i + 1] === ' ')) {
      return { key: text.slice(0, i).trimEnd(), value: text.slice(i + 1).trim() };
    }
  }
  return undefined;
}

function scalarKey(raw: string, no: number): string {
  if (raw.startsWith('"') || raw.startsWith("'")) return quoted(raw, 0, no)[0];
  const v = plainScalar(raw);
  return v === null ? 'null' : String(v);
}

/** A quoted string at `start`: [value, index after the closing quote]. */
function quoted(text: string, start: number, no: number, probe = false): [string, number] {
  const q = text[start];
  let out = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (q === "'") {
      if (c === "'") {
        if (text[i + 1] === "'") {
          out += "'";
          i++;
          continue;
        }
        return [out, i + 1];
      }
      out += c;
      continue;
    }
    if (c === '"') return [out, i + 1];
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = text[++i];
    const simple: Record<string, string> = { n: '\n', t: '\t', r: '\r', '0': '\0', '"': '"', '\\': '\\', '/': '/', ' ': ' ', e: '\x1b', a: '\x07', b: '\b', f: '\f', v: '\v' };
    if (e !== undefined && Object.hasOwn(simple, e)) {
      out += simple[e];
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = text.slice(i + 1, i + 1 + len);
      if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw new YamlError(`invalid escape \\${e}${hex}`, no);
      out += String.fromCodePoint(parseInt(hex, 16));
      i += len;
    } else {
      throw new YamlError(`invalid escape \\${e ?? ''}`, no);
    }
  }
  if (probe) return ['', -1];
  throw new YamlError('unterminated quoted string', no);
}

/** YAML 1.2 core schema resolution of a plain scalar. */
export function plainScalar(s: string): unknown {
  if (s === '' || s === '~' || /^(null|Null|NULL)$/.test(s)) return null;
  if (/^(true|True|TRUE)$/.test(s)) return true;
  if (/^(false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?[0-9]+$/.test(s)) {
    const n = Number(s);
    return Number.isSafeInteger(n) ? n : s;
  }
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$/.test(s)) return Number(s);
  if (/^[-+]?\.(inf|Inf|INF)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
  if (/^\.(nan|NaN|NAN)$/.test(s)) return NaN;
  return s;
}

/** One-line flow collections: [a, b], {k: v}, nested, quoted strings, aliases. */
class FlowParser {
  private i = 0;
  private readonly s: string;
  private readonly no: number;
  private readonly anchors: Map<string, unknown>;

  constructor(s: string, no: number, anchors: Map<string, unknown>) {
    this.s = s;
    this.no = no;
    this.anchors = anchors;
  }

  private ws(): void {
    while (this.s[this.i] === ' ') this.i++;
  }

  end(): void {
    this.ws();
    if (this.i < this.s.length) throw new YamlError(`unexpected text after a flow collection: ${JSON.stringify(this.s.slice(this.i, this.i + 20))}`, this.no);
  }

  value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === '[') return this.seq();
    if (c === '{') return this.map();
    if (c === '"' || c === "'") {
      const [v, next] = quoted(this.s, this.i, this.no);
      this.i = next;
      return v;
    }
    const start = this.i;
    while (this.i < this.s.length && !/[,\]}]/.test(this.s[this.i]!) && !(this.s[this.i] === ':' && this.s[this.i + 1] === ' ')) this.i++;
    const token = this.s.slice(start, this.i).trim();
    if (token.startsWith('*')) {
      if (!this.anchors.has(token.slice(1))) throw new YamlError(`unknown alias ${token}`, this.no);
      return this.anchors.get(token.slice(1));
    }
    return plainScalar(token);
  }

  private seq(): unknown[] {
    const out: unknown[] = [];
    this.i++;
    for (;;) {
      this.ws();
      if (this.s[this.i] === ']') {
        this.i++;
        return out;
      }
      out.push(this.value());
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== ']') throw new YamlError('expected "," or "]" in a flow sequence (flow collections must fit on one line)', this.no);
    }
  }

  private map(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.i++;
    for (;;) {
      this.ws();
      if (this.s[this.i] === '}') {
        this.i++;
        return out;
      }
      const key = this.value();
      this.ws();
      let v: unknown = null;
      if (this.s[this.i] === ':') {
        this.i++;
        v = this.value();
      }
      out[key === null ? 'null' : String(key)] = v;
      this.ws();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== '}') throw new YamlError('expected "," or "}" in a flow mapping (flow collections must fit on one line)', this.no);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writing: block style, keys sorted (as rancher-metadata's Go YAML did), strings quoted when a
// plain scalar would read back as something else.

export function stringifyYaml(value: unknown): string {
  if (!isContainer(value) || isEmptyContainer(value)) return `${scalarText(value)}\n`;
  return emit(value, 0);
}

function isContainer(v: unknown): v is unknown[] | Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isEmptyContainer(v: unknown): boolean {
  return Array.isArray(v) ? v.length === 0 : isContainer(v) && Object.keys(v).length === 0;
}

function emit(value: unknown[] | Record<string, unknown>, indent: number): string {
  const pad = ' '.repeat(indent);
  let out = '';
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isContainer(item) && !isEmptyContainer(item)) {
        // "- " followed by the first line of the nested block, the rest indented under it.
        const nested = emit(item, indent + 2);
        out += `${pad}- ${nested.slice(indent + 2)}`;
      } else {
        out += `${pad}- ${scalarText(item)}\n`;
      }
    }
    return out;
  }
  for (const key of Object.keys(value).sort()) {
    const v = value[key];
    const k = scalarText(key);
    if (isContainer(v) && !isEmptyContainer(v)) {
      // Sequences under a key are indented like the key (the common Go YAML layout).
      out += `${pad}${k}:\n${emit(v, Array.isArray(v) ? indent : indent + 2)}`;
    } else {
      out += `${pad}${k}: ${scalarText(v)}\n`;
    }
  }
  return out;
}

function scalarText(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (Array.isArray(v)) return '[]';
  if (typeof v === 'object') return '{}';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return '.nan';
    if (!Number.isFinite(v)) return v > 0 ? '.inf' : '-.inf';
    return String(v);
  }
  const s = String(v);
  // Also quoted: what YAML 1.1 readers (Go's yaml.v2) would take for a date or a boolean.
  const yaml11 = /^\d{4}-\d\d?-\d\d?|^(y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF)$/.test(s);
  const plainSafe = s !== '' && !yaml11 && plainScalar(s) === s && !/^[\s\-?:,[\]{}#&*!|>'"%@`]|[\s:]$|: | #|[\x00-\x1f\x7f]/.test(s);
  return plainSafe ? s : JSON.stringify(s);
}
