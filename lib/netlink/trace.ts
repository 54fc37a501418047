// Observer of every netlink request, for debug logging; off unless set. Its
// own module so that a logger can set it without loading the socket code.
export type NetlinkTrace = (operation: string, ms: number, error?: Error) => void;

let current: NetlinkTrace | undefined;

export function setNetlinkTrace(fn: NetlinkTrace | undefined): void {
  current = fn;
}

export function netlinkTrace(): NetlinkTrace | undefined {
  return current;
}
