// The built cattle-metadata for integration tests: started on 127.0.0.1 with
// random ports, stopped by PID (the harness also kills it if a test fails).
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { after } from 'node:test';

import { baseEnv, BIN, cleanupAll, trackPid, untrackPid } from '../helpers/harness.ts';

// Whatever a failed test left running is killed by PID at the end of the file.
after(cleanupAll);

export interface MetadataProcess {
  child: ChildProcess;
  url: string;
  reloadUrl: string | undefined;
  stderr(): string;
  stop(): Promise<number | null>;
}

/**
 * Start the built cattle-metadata on 127.0.0.1 with random ports; resolves once it listens.
 * `file` is a classic answers file, or an environment description with `{ environment: true }`.
 */
export function startMetadataExe(file: string, extra: string[] = [], opts: { environment?: boolean } = {}): Promise<MetadataProcess> {
  const source = opts.environment ? ['serve', '--environment', file] : ['--answers', file];
  const child = spawn(path.join(BIN, 'cattle-metadata'), [...source, '--listen', '127.0.0.1:0', '--reload-listen', '127.0.0.1:0', ...extra], {
    env: baseEnv(), stdio: ['ignore', 'pipe', 'pipe'],
  });
  trackPid(child.pid);
  let out = '';
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => {
    untrackPid(child.pid);
    resolve(code);
  }));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`cattle-metadata did not start: ${err}`)), 15_000);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`cattle-metadata exited (${code}): ${err}`));
    });
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n')[0];
      if (!out.includes('\n') || !line) return;
      clearTimeout(timer);
      const ready = JSON.parse(line) as { listening: string; reload: string | null };
      resolve({
        child,
        url: `http://${ready.listening}`,
        reloadUrl: ready.reload ? `http://${ready.reload}/v1/reload` : undefined,
        stderr: () => err,
        stop: () => {
          if (child.exitCode === null) child.kill('SIGTERM');
          return exited;
        },
      });
    });
  });
}

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export function request(url: string, opts: { method?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(20_000, () => req.destroy(new Error(`request to ${url} timed out`)));
    req.end();
  });
}
