// Shared by the ipam-* and metadata-* unit tests: an in-process metadata
// service over a temporary answers file, stand-in servers that misbehave, and
// the IPAM plugin run in-process exactly as the skel runs it. Loopback only.
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { plugin } from '../../ipam/cattle/plugin.ts';
import { type PluginIO, runPlugin } from '../../lib/skel.ts';
import type { Answers } from '../../metadata/answers.ts';
import { environmentAnswers } from '../../metadata/environment.ts';
import { addContainer, type ContainerSpec } from '../../metadata/records.ts';
import { createMetadataHandler, createReloadHandler, listen, type RunningServer } from '../../metadata/server.ts';
import { AnswersStore } from '../../metadata/store.ts';

export function tempDir(prefix = 'cattle-md-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export interface TestMetadata {
  /** e.g. 127.0.0.1:41234, for ipam.metadataAddress */
  address: string;
  url: string;
  store: AnswersStore;
  file: string;
  reloadUrl: string;
  add(spec: ContainerSpec): Promise<void>;
  close(): Promise<void>;
}

/** A metadata service on 127.0.0.1 (random port) serving `answers` from a temporary JSON file it watches. */
export async function startMetadata(answers?: Answers, opts: { xff?: boolean; fileName?: string; fileText?: string } = {}): Promise<TestMetadata> {
  const dir = tempDir();
  const file = path.join(dir, opts.fileName ?? 'answers.json');
  if (opts.fileText !== undefined) fs.writeFileSync(file, opts.fileText);
  else if (answers) fs.writeFileSync(file, JSON.stringify(answers));
  const store = new AnswersStore(file);
  const first = await store.reload();
  if (!first.ok) throw new Error(first.error);
  store.watch(() => {});
  const main: RunningServer = await listen(createMetadataHandler({ store, xff: opts.xff ?? false }), { host: '127.0.0.1', port: 0 });
  const reload: RunningServer = await listen(createReloadHandler(() => store.reload()), { host: '127.0.0.1', port: 0 });
  return {
    address: main.address,
    url: `http://${main.address}`,
    store,
    file,
    reloadUrl: `http://${reload.address}/v1/reload`,
    add: async (spec) => {
      await addContainer(file, spec);
    },
    close: async () => {
      store.unwatch();
      await Promise.all([main.close(), reload.close()]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface EnvironmentMetadata {
  url: string;
  store: AnswersStore;
  reloadUrl: string;
  /** What the last reload reported as left out or wrong. */
  warnings(): string[];
  close(): Promise<void>;
}

/** A metadata service on 127.0.0.1 (random port) serving the environment file `file` (watched) as `selfHost`. */
export async function startEnvironmentMetadata(file: string, selfHost?: string): Promise<EnvironmentMetadata> {
  const store = new AnswersStore(file, undefined, (text, f) => environmentAnswers(text, f, selfHost));
  let warnings: string[] = [];
  const note = (r: Awaited<ReturnType<AnswersStore['reload']>>): typeof r => {
    if (r.ok && r.changed) warnings = r.warnings;
    return r;
  };
  const first = note(await store.reload());
  if (!first.ok) throw new Error(first.error);
  store.watch(note);
  const main: RunningServer = await listen(createMetadataHandler({ store }), { host: '127.0.0.1', port: 0 });
  const reload: RunningServer = await listen(createReloadHandler(() => store.reload().then(note)), { host: '127.0.0.1', port: 0 });
  return {
    url: `http://${main.address}`,
    store,
    reloadUrl: `http://${reload.address}/v1/reload`,
    warnings: () => warnings,
    close: async () => {
      store.unwatch();
      await Promise.all([main.close(), reload.close()]);
    },
  };
}

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

/** GET (by default) `base + path` on a fresh connection. */
export function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('test request timed out')));
    req.end();
  });
}

export interface FakeServer {
  address: string;
  requests: string[];
  close(): Promise<void>;
}

/** A stand-in server on 127.0.0.1 whose behaviour the test writes. */
export async function startFakeServer(handler: http.RequestListener): Promise<FakeServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** A loopback port with nothing listening (bound, then released). */
export async function deadAddress(): Promise<string> {
  const fake = await startFakeServer(() => {});
  await fake.close();
  return fake.address;
}

export interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
  ms: number;
}

export const BASE_ENV = {
  CNI_CONTAINERID: 'c0ffee0123456789',
  CNI_NETNS: '/var/run/netns/cattle-ipam-test-none',
  CNI_IFNAME: 'eth0',
  CNI_PATH: '/opt/cni/bin',
};

export function ipamConf(ipam: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: '1.1.0', name: 'rancher-cni-network', type: 'rancher-bridge', ipam: { type: 'rancher-cni-ipam', ...ipam }, ...extra };
}

/** Run the IPAM plugin in-process for one command, as the skel does for the executable. */
export async function runIpam(command: string, conf: Record<string, unknown>, env: Record<string, string> = {}): Promise<PluginRun> {
  let stdout = '';
  let stderr = '';
  const io: PluginIO = {
    env: { ...BASE_ENV, CNI_COMMAND: command, ...env },
    stdinIsTTY: false,
    readStdin: () => Buffer.from(JSON.stringify(conf)),
    writeStdout: (s) => {
      stdout += s;
    },
    writeStderr: (s) => {
      stderr += s;
    },
  };
  const t0 = performance.now();
  const code = await runPlugin(plugin, io);
  const ms = performance.now() - t0;
  let json: Record<string, unknown> | undefined;
  try {
    json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json, ms };
}

/** Classic answers with the given containers under `default` of 2015-12-19 (and latest). */
export function answersWith(containers: Record<string, unknown>[], extra: Record<string, unknown> = {}): Answers {
  return { '2015-12-19': { default: { containers, ...extra } } };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
