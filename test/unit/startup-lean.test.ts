// What keeps a plugin start lean without changing behaviour: an IP check that
// answers as node:net's isIP, a tty check without node:tty, and delegates'
// output read by blocking reads (one-shot plugin) or through the event loop
// (agent) with the same outcome.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { isIP } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import fc from 'fast-check';

import { strictIpVersion } from '../../lib/ip.ts';
import { readDelegatesAsync, runPiped } from '../../lib/spawn.ts';
import { fdIsTTY } from '../../lib/stdio.ts';

const ipLike = fc.oneof(
  fc.ipV4(), fc.ipV6(), fc.ipV4Extended(),
  fc.stringMatching(/^[0-9a-fA-F:.%a-z]{0,24}$/),
  fc.tuple(fc.ipV6(), fc.stringMatching(/^[a-z0-9]{1,6}$/)).map(([a, z]) => `${a}%${z}`),
  fc.tuple(fc.ipV4(), fc.constantFrom('0', '00', '1')).map(([a, p]) => a.replace(/^\d+/, (d) => p + d)),
);

test('strictIpVersion answers as node:net isIP', () => {
  fc.assert(fc.property(ipLike, (s) => strictIpVersion(s) === isIP(s)), { numRuns: Number(process.env.IP_RUNS ?? 5000) });
  for (const s of ['10.1.2', '010.1.2.3', '1.2.3.4.5', '::ffff:1.2.3.4', 'fe80::1%eth0', '', ':', '1::2::3', '256.1.1.1']) {
    assert.equal(strictIpVersion(s), isIP(s), s);
  }
});

test('fdIsTTY: pipes, files and /dev/null are not terminals', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-tty-'));
  try {
    const file = fs.openSync(path.join(dir, 'f'), 'w');
    const devNull = fs.openSync('/dev/null', 'r');
    assert.equal(fdIsTTY(file), false);
    assert.equal(fdIsTTY(devNull), false);
    assert.equal(fdIsTTY(999), false, 'not open');
    fs.closeSync(file);
    fs.closeSync(devNull);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('a delegate\'s output and exit status, read blocking and then through the event loop', async () => {
  const script = 'read -r line; printf "%s|%s" "$line" "$X"; echo err >/dev/null; exit 3';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ccni-spawn-'));
  const file = path.join(dir, 'delegate');
  fs.writeFileSync(file, `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  try {
    const runFile = () => runPiped(file, { X: 'y', PATH: '/usr/bin:/bin' }, Buffer.from('hello\n'), []);
    const blocking = await runFile();
    readDelegatesAsync();
    const viaLoop = await runFile();
    for (const r of [blocking, viaLoop]) {
      assert.equal(r.stdout.toString(), 'hello|y');
      assert.equal(r.status, 3);
      assert.equal(r.signal, null);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
