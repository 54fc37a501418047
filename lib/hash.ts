// Short stable names from strings (host veth names, chain names, state file
// keys). Not cryptographic: names only need to be well spread, and every
// link we touch is also checked by its ownership mark. Loading node:crypto
// just for this cost ~7 ms on every plugin start.

/** FNV-1a over UTF-16 code units, 32 bits, with a seed per lane. */
function fnv1a(input: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < input.length; i++) {
    h ^= input.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // Final avalanche (murmur3 fmix32): neighbouring inputs differ in every digit.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

/** `length` lowercase hex characters of a hash of input. */
export function hashHex(input: string, length: number): string {
  let out = '';
  for (let lane = 0; out.length < length; lane++) out += fnv1a(input, Math.imul(lane + 1, 0x9e3779b1)).toString(16).padStart(8, '0');
  return out.slice(0, length);
}
