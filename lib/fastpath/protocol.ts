// The fast path's wire format: a plugin executable hands its whole invocation
// (program name, environment, stdin) to the per-host agent over a unix stream
// socket, and the agent answers with what the executable would have printed.
// One JSON object per line each way. Kept free of imports: the forwarding
// client loads this module and nothing else on a pod start.

export const DEFAULT_AGENT_SOCKET = '/run/cattle-cni/agent.sock';
export const SOCKET_ENV = 'CATTLE_CNI_AGENT_SOCKET';
/** How long the client waits for the agent's next line (its acceptance, a heartbeat, the answer). */
export const SILENCE_ENV = 'CATTLE_CNI_AGENT_SILENCE_MS';
export const DEFAULT_SILENCE_MS = 5000;
/** The agent says it is still working this often. */
export const HEARTBEAT_MS = 1000;
/** A request line larger than this is refused (a netconf with a prevResult is a few KiB). */
export const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
export const PROTOCOL_VERSION = 1;

/** Commands the agent runs; VERSION never leaves the executable, a bare run by hand neither. */
export const FORWARDED_COMMANDS: ReadonlySet<string> = new Set(['ADD', 'DEL', 'CHECK', 'GC', 'STATUS']);

/**
 * Process-wide settings that plugin code reads from its own environment rather
 * than from the request: the agent serves only callers whose values equal its own.
 */
export const PROCESS_SETTINGS: readonly string[] = ['CATTLE_CNI_STATE_DIR', 'CATTLE_CNI_LOCK_DIR', 'CATTLE_NATIVE_ADDON'];

export interface ForwardRequest {
  v: number;
  program: string;
  /** /proc/self/ns/net of the caller, e.g. "net:[4026531840]": the agent serves its own netns only. */
  netns: string;
  /** device:inode:mtime of the caller's executable: a caller of another build runs its own code. */
  exe: string;
  env: Record<string, string>;
  /** stdin, base64 (the exact bytes: IPAM delegates get them unchanged). */
  stdin: string;
  /** Epoch ms after which the agent must not start it: the client has given up by then. */
  notAfter: number;
}

export type AgentLine =
  | { accepted: true }
  | { heartbeat: true }
  | { done: true; exit: number; stdout: string; stderr: string }
  /** The agent will not run this one; the executable does the work itself. */
  | { declined: string }
  /** A request the agent could not read; nothing was run. */
  | { error: string };
