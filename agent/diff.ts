// The difference between what the agent applied last and what is desired now:
// only that is sent to the kernel (no flushing, no re-dump per change). Pure.

/** The entries the agent programmed: key (peer IP or container IP) → MAC. */
export interface Applied {
  fdb: Map<string, string>;
  neighbours: Map<string, string>;
}

export interface EntryChanges {
  /** Added, or with a new MAC (a replace). */
  put: [key: string, mac: string][];
  /** Removed: key and the MAC it had. */
  remove: [key: string, mac: string][];
}

export interface Changes {
  fdb: EntryChanges;
  neighbours: EntryChanges;
}

export function emptyApplied(): Applied {
  return { fdb: new Map(), neighbours: new Map() };
}

export function diffEntries(applied: ReadonlyMap<string, string>, desired: ReadonlyMap<string, string>): EntryChanges {
  const put: [string, string][] = [];
  const remove: [string, string][] = [];
  for (const [k, mac] of applied) {
    const want = desired.get(k);
    if (want === undefined) remove.push([k, mac]);
  }
  for (const [k, mac] of desired) if (applied.get(k) !== mac) put.push([k, mac]);
  const byKey = (a: [string, string], b: [string, string]): number => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  return { put: put.sort(byKey), remove: remove.sort(byKey) };
}

export function diff(applied: Applied, desired: { peers: ReadonlyMap<string, string>; neighbours: ReadonlyMap<string, string> }): Changes {
  return { fdb: diffEntries(applied.fdb, desired.peers), neighbours: diffEntries(applied.neighbours, desired.neighbours) };
}

export function isEmpty(c: Changes): boolean {
  return c.fdb.put.length + c.fdb.remove.length + c.neighbours.put.length + c.neighbours.remove.length === 0;
}

/** applied after the changes: what apply() does to the view when every change succeeded. */
export function applyToView(applied: Applied, c: Changes): Applied {
  const fdb = new Map(applied.fdb);
  const neighbours = new Map(applied.neighbours);
  for (const [k] of c.fdb.remove) fdb.delete(k);
  for (const [k, m] of c.fdb.put) fdb.set(k, m);
  for (const [k] of c.neighbours.remove) neighbours.delete(k);
  for (const [k, m] of c.neighbours.put) neighbours.set(k, m);
  return { fdb, neighbours };
}

/** The view as JSON (the applied file) and back. */
export function viewToJson(a: Applied): { fdb: Record<string, string>; neighbours: Record<string, string> } {
  return { fdb: Object.fromEntries([...a.fdb].sort()), neighbours: Object.fromEntries([...a.neighbours].sort()) };
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

export function viewFromJson(v: unknown): Applied {
  const out = emptyApplied();
  if (typeof v !== 'object' || v === null) return out;
  for (const part of ['fdb', 'neighbours'] as const) {
    const m = (v as Record<string, unknown>)[part];
    if (typeof m !== 'object' || m === null) continue;
    for (const [k, mac] of Object.entries(m as Record<string, unknown>)) if (typeof mac === 'string' && MAC.test(mac)) out[part].set(k, mac);
  }
  return out;
}
