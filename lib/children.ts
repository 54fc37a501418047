// Descriptors that every child process we start inherits (as fd 3, 4, …).
// A plugin puts its attachment lock here: if the plugin is killed while a
// delegate (host-local, iptables) still runs, the orphan keeps holding the
// lock, so the DEL that follows waits for it to finish instead of racing it.
const inherited = new Set<number>();

export function inheritInChildren(fd: number): void {
  inherited.add(fd);
}

export function stopInheriting(fd: number): void {
  inherited.delete(fd);
}

/** A spawn stdio array: the given three entries, then every inherited descriptor. */
export function childStdio<T>(stdio: [T, T, T]): (T | number)[] {
  return [...stdio, ...inherited];
}

/** The inherited descriptors, in order (they become fd 3, 4, … in the child). */
export function inheritedFds(): number[] {
  return [...inherited];
}
