// Milliseconds since this process started, monotonic. performance.now() says
// the same but its first use loads perf_hooks and ten modules behind it, a
// cost every plugin start would pay for its step timings.
export function nowMs(): number {
  return process.uptime() * 1000;
}
