#!/usr/bin/env node
// Part of `npm run lint`: the import graph of our TypeScript sources (static
// and dynamic imports alike) has no cycles and keeps the rooms' boundaries:
// entries → programs → lib, programs never import each other, lib imports
// only lib. eslint's no-restricted-imports says the same for static imports
// (in the editor); this also sees dynamic import(). docs/ARCHITECTURE.md.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SKIP = new Set(['node_modules', 'dist', 'gen', 'build', '.git', 'native']);
const IMPORT_RE = /(?:^|[^.\w])(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;

function sources(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sources(p, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

const files = sources(root);
const graph = new Map();
for (const f of files) {
  const text = fs.readFileSync(f, 'utf8');
  const deps = new Set();
  for (const m of text.matchAll(IMPORT_RE)) {
    const target = path.resolve(path.dirname(f), m[1] ?? m[2]);
    if (target.endsWith('.ts') && fs.existsSync(target)) deps.add(target);
  }
  graph.set(f, [...deps]);
}

// Tarjan's strongly connected components: any component of more than one file is a cycle.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const cycles = [];
function visit(v) {
  idx.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!idx.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) {
      low.set(v, Math.min(low.get(v), idx.get(w)));
    }
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(path.relative(root, w));
    } while (w !== v);
    if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
  }
}
for (const f of files) if (!idx.has(f)) visit(f);

const PROGRAMS = ['plugins', 'ipam', 'metadata', 'cniglue', 'cli', 'agent'];
/** The room of a source file: lib, a program, 'entries' (top-level files) or undefined (tests, scripts). */
function roomOf(file) {
  const first = path.relative(root, file).split(path.sep)[0];
  if (first === 'lib' || PROGRAMS.includes(first)) return first;
  return first.endsWith('.ts') ? 'entries' : undefined;
}
const crossings = [];
for (const [from, deps] of graph) {
  const a = roomOf(from);
  if (a === undefined || a === 'entries') continue;
  for (const to of deps) {
    const b = roomOf(to);
    // names.ts is a leaf of data (the executable's names) that the CLI lists.
    const allowed = b === 'lib' || b === a || path.relative(root, to) === 'names.ts';
    if (!allowed) crossings.push(`${path.relative(root, from)} → ${path.relative(root, to)}`);
  }
}

for (const c of cycles) console.error(`import cycle: ${c.join(' ↔ ')}`);
for (const c of crossings) console.error(`import boundary crossed (entries → programs → lib only): ${c}`);
if (cycles.length || crossings.length) process.exit(1);
console.log(`check-imports: ${files.length} files, no import cycles, no boundary crossed`);
