// The operator's first steps: scripts/install.sh into a temporary directory
// (atomic, a link per name, optional config), and `npm run demo` end to end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BIN, ROOT, netnsNames, rootLinkNames } from '../helpers/harness.ts';

test('install.sh copies the executable and links every plugin name, replacing an older install', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-install-'));
  try {
    const bin = path.join(dir, 'bin');
    const conf = path.join(dir, 'net.d');
    // An older install: a plain file where a link goes, and a stale executable.
    fs.mkdirSync(bin);
    fs.writeFileSync(path.join(bin, 'cattle-bridge'), 'old');
    fs.writeFileSync(path.join(bin, 'cattle-cni'), 'old');
    const env = { ...process.env, PATH: process.env.PATH };
    const r = spawnSync('bash', [path.join(ROOT, 'scripts', 'install.sh'), '--bin-dir', bin, '--conf', '10-cattle-bridge.conflist', '--conf-dir', conf],
      { cwd: ROOT, env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const names = spawnSync(path.join(BIN, 'cattle-cni'), ['names'], { encoding: 'utf8' }).stdout.trim().split('\n');
    for (const name of names) {
      const p = path.join(bin, name);
      if (name !== 'cattle-cni') assert.equal(fs.readlinkSync(p), 'cattle-cni', name);
      const v = spawnSync(p, [], { env: { PATH: env.PATH, CNI_COMMAND: 'VERSION' }, encoding: 'utf8' });
      if (name !== 'cattle-cni' && name !== 'cattle-metadata' && name !== 'cniglue') assert.match(v.stdout, /"supportedVersions"/, name);
    }
    assert.equal(fs.statSync(path.join(bin, 'cattle-cni')).size, fs.statSync(path.join(BIN, 'cattle-cni')).size);
    assert.deepEqual(fs.readdirSync(bin).filter((f) => f.startsWith('.')), [], 'no temporary files left');
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(conf, '10-cattle-bridge.conflist'), 'utf8')).name, 'cattle-bridge');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('npm run demo: all pods reach each other, the gateway and the metadata service; nothing left behind', () => {
  const linksBefore = rootLinkNames();
  const allNetnsBefore = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  const r = spawnSync('node_modules/.bin/node', ['scripts/demo.ts'], {
    cwd: ROOT, encoding: 'utf8', timeout: 180_000, env: { PATH: process.env.PATH, CATTLE_CNI_BIN: BIN },
  });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /\[1\/9\]/);
  assert.match(r.stdout, /reachability: all ok/);
  assert.match(r.stdout, /leftovers: none/);
  assert.match(r.stdout, /demo: ok/);
  // Every cell of the reachability table is ok (or the diagonal).
  const lines = r.stdout.split('\n');
  const header = lines.findIndex((l) => l.includes('from \\ to'));
  const table = lines.slice(header + 1, header + 5);
  assert.equal(table.length, 4, r.stdout);
  for (const row of table) assert.deepEqual(row.trim().split(/\s+/).slice(1).filter((c) => c !== 'ok' && c !== '-'), [], row);
  assert.deepEqual(rootLinkNames(), linksBefore);
  const after = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  assert.deepEqual(after.split('\n').filter((l) => l.includes('ccni-demo')), allNetnsBefore.split('\n').filter((l) => l.includes('ccni-demo')));
  assert.deepEqual(netnsNames(), []);
});
