// This process's standard streams as plain descriptors: synchronous reads and
// writes that never touch process.stdin/stdout (which can switch a pipe to
// non-blocking, or lose output at exit). Shared by the plugin harness and the
// fast path's forwarding client, which must read stdin before it knows who
// will run the request.
import { fstatSync, readlinkSync, readSync, writeSync } from 'node:fs';

let stdin: Buffer | undefined;

/** stdin read to EOF, once: whoever asks again (the in-process run after a declined forward) gets the same bytes. */
export function processStdin(): Buffer {
  stdin ??= readFdToEnd(0);
  return stdin;
}

/**
 * Whether fd is a terminal: a character device that is a tty, pty or console.
 * Not node:tty's isatty: loading node:tty loads node:net and the stream stack,
 * ~2 ms of every plugin start for one question.
 */
export function fdIsTTY(fd: number): boolean {
  try {
    return fstatSync(fd).isCharacterDevice() && /^\/dev\/(?:pts\/|tty|console$)/.test(readlinkSync(`/proc/self/fd/${fd}`));
  } catch {
    return false;
  }
}

function errnoCode(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null ? (e as NodeJS.ErrnoException).code : undefined;
}

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
export function sleepMs(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

/**
 * Reads fd to EOF without touching process.stdin (which can switch the fd to non-blocking).
 * EAGAIN (non-blocking pipe from the parent) waits and retries; a closed fd reads as empty.
 */
export function readFdToEnd(fd: number): Buffer {
  const chunks: Buffer[] = [];
  for (;;) {
    const buf = Buffer.allocUnsafe(64 * 1024);
    let n: number;
    try {
      n = readSync(fd, buf, 0, buf.length, null);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        sleepMs(5);
        continue;
      }
      if (code === 'EOF' || code === 'EBADF') break;
      throw e;
    }
    if (n === 0) break;
    chunks.push(buf.subarray(0, n));
  }
  return Buffer.concat(chunks);
}

/** stderr, best effort: a log line that cannot be written must not fail the run. */
export function writeStderrQuietly(s: string): void {
  try {
    writeFdFully(2, s);
  } catch {
    // nowhere left to say it
  }
}

export function writeFdFully(fd: number, s: string): void {
  const data = Buffer.from(s, 'utf8');
  let offset = 0;
  while (offset < data.length) {
    try {
      offset += writeSync(fd, data, offset, data.length - offset);
    } catch (e) {
      const code = errnoCode(e);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        sleepMs(1);
        continue;
      }
      throw e;
    }
  }
}
