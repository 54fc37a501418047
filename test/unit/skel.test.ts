import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import { CniError } from '../../lib/cni/errors.ts';
import type { Result } from '../../lib/cni/result.ts';
import type { CniRequest, PluginIO, PluginSpec } from '../../lib/skel.ts';
import { readFdToEnd, runPlugin, usageText } from '../../lib/skel.ts';

const VERSION_LINE =
  '{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n';

const ENV = {
  CNI_CONTAINERID: 'ctr-1234',
  CNI_NETNS: '/var/run/netns/cattle-cni-test-does-not-exist',
  CNI_IFNAME: 'eth0',
  CNI_ARGS: 'IgnoreUnknown=1;K8S_POD_NAME=web-0',
  CNI_PATH: '/opt/cni/bin:/usr/lib/cni',
};

const conf = (extra: Record<string, unknown> = {}): string =>
  JSON.stringify({ cniVersion: '1.1.0', name: 'rancher', type: 'test', ...extra });

const RESULT: Result = {
  interfaces: [{ name: 'eth0', mac: '0a:58:0a:16:00:05', mtu: 1500, sandbox: '/var/run/netns/x' }],
  ips: [{ interface: 0, address: '10.22.0.5/24', gateway: '10.22.0.1' }],
  routes: [{ dst: '0.0.0.0/0', gw: '10.22.0.1' }],
};

interface Calls {
  commands: string[];
  requests: CniRequest[];
}

function testSpec(overrides: Partial<PluginSpec> = {}): { spec: PluginSpec; calls: Calls } {
  const calls: Calls = { commands: [], requests: [] };
  const record = (req: CniRequest): void => {
    calls.commands.push(req.command);
    calls.requests.push(req);
  };
  const spec: PluginSpec = {
    name: 'test',
    version: '1.2.3',
    about: 'a plugin for tests',
    add: (req) => {
      record(req);
      return RESULT;
    },
    del: record,
    check: record,
    gc: record,
    status: record,
    ...overrides,
  };
  return { spec, calls };
}

interface RunOptions {
  stdin?: string | (() => Buffer);
  tty?: boolean;
  failStdout?: boolean;
}

interface RunOutcome {
  code: number;
  stdout: string;
  stderr: string;
  stdinReads: number;
}

async function run(spec: PluginSpec, env: Record<string, string | undefined>, opts: RunOptions = {}): Promise<RunOutcome> {
  const out: string[] = [];
  const err: string[] = [];
  let stdinReads = 0;
  const io: PluginIO = {
    env,
    stdinIsTTY: opts.tty ?? false,
    readStdin: () => {
      stdinReads++;
      const s = opts.stdin ?? '';
      return typeof s === 'function' ? s() : Buffer.from(s);
    },
    writeStdout: (s) => {
      if (opts.failStdout) throw new Error('EPIPE: broken pipe');
      out.push(s);
    },
    writeStderr: (s) => err.push(s),
  };
  const code = await runPlugin(spec, io);
  return { code, stdout: out.join(''), stderr: err.join(''), stdinReads };
}

/** Asserts the protocol's error contract: exit 1 and exactly one JSON object line on stdout. */
function expectError(o: RunOutcome, code: number, msg?: string): Record<string, unknown> {
  assert.equal(o.code, 1, `exit code, stdout: ${o.stdout}`);
  assert.ok(o.stdout.endsWith('\n'), 'newline-terminated');
  const lines = o.stdout.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `one line on stdout, got: ${o.stdout}`);
  const obj = JSON.parse(lines[0]) as Record<string, unknown>;
  assert.equal(obj.code, code, lines[0]);
  if (msg !== undefined) assert.equal(obj.msg, msg);
  assert.equal(typeof obj.cniVersion, 'string');
  assert.deepEqual(
    Object.keys(obj).filter((k) => !['cniVersion', 'code', 'msg', 'details'].includes(k)),
    [],
    'no extra keys',
  );
  return obj;
}

describe('runPlugin: VERSION and usage', () => {
  it('VERSION prints the exact reply without reading stdin or other env', async () => {
    const { spec, calls } = testSpec();
    const o = await run(spec, { CNI_COMMAND: 'VERSION' }, { stdin: () => assert.fail('stdin read') });
    assert.equal(o.code, 0);
    assert.equal(o.stdout, VERSION_LINE);
    assert.equal(o.stdinReads, 0);
    assert.deepEqual(calls.commands, []);
  });

  it('VERSION ignores a garbage config and invalid env', async () => {
    const { spec } = testSpec();
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'VERSION', CNI_IFNAME: 'bad/name' }, { stdin: 'not json' });
    assert.equal(o.stdout, VERSION_LINE);
    assert.equal(o.code, 0);
  });

  for (const env of [{}, { CNI_COMMAND: '' }, { ...ENV }]) {
    it(`no CNI_COMMAND (${JSON.stringify(env).slice(0, 30)}) prints usage on stderr and exits 0`, async () => {
      const { spec, calls } = testSpec();
      const o = await run(spec, env, { tty: true, stdin: () => assert.fail('stdin read') });
      assert.equal(o.code, 0);
      assert.equal(o.stdout, '');
      assert.equal(o.stdinReads, 0);
      assert.deepEqual(calls.commands, []);
      const lines = o.stderr.split('\n');
      assert.equal(lines[0], 'CNI test plugin 1.2.3');
      assert.equal(lines[1], 'a plugin for tests');
      assert.ok(o.stderr.includes('CNI protocol versions supported: 0.1.0, 0.2.0, 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0\n'));
    });
  }

  it('usage without about text', () => {
    const { spec } = testSpec({ about: undefined });
    assert.ok(usageText(spec).startsWith('CNI test plugin 1.2.3\nusage:'));
  });
});

describe('runPlugin: malformed input', () => {
  const cases: {
    what: string;
    env: Record<string, string | undefined>;
    stdin?: string | (() => Buffer);
    tty?: boolean;
    code: number;
    msg?: string;
    cniVersion?: string;
  }[] = [
    { what: 'empty stdin', env: { CNI_COMMAND: 'ADD' }, stdin: '', code: 6, msg: 'no network configuration on stdin' },
    { what: 'stdin is a terminal', env: { CNI_COMMAND: 'ADD' }, tty: true, stdin: () => assert.fail('read'), code: 6 },
    { what: 'invalid JSON', env: { CNI_COMMAND: 'ADD' }, stdin: '{"cniVersion":', code: 6, cniVersion: '1.1.0' },
    { what: 'JSON array', env: { CNI_COMMAND: 'DEL' }, stdin: '[]', code: 6 },
    {
      what: 'stdin read failure',
      env: { CNI_COMMAND: 'ADD' },
      stdin: () => {
        throw new Error('EIO: i/o error');
      },
      code: 5,
      msg: 'error reading from stdin',
    },
    {
      what: 'missing CNI_IFNAME and CNI_PATH',
      env: { CNI_COMMAND: 'ADD', CNI_IFNAME: undefined, CNI_PATH: '' },
      code: 4,
      msg: 'required env variables [CNI_IFNAME,CNI_PATH] missing',
    },
    {
      what: 'missing everything for CHECK',
      env: { CNI_COMMAND: 'CHECK', CNI_CONTAINERID: '', CNI_NETNS: '', CNI_IFNAME: '', CNI_PATH: '' },
      code: 4,
      msg: 'required env variables [CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH] missing',
    },
    { what: 'bad ifname', env: { CNI_COMMAND: 'ADD', CNI_IFNAME: 'eth0:1' }, code: 4 },
    { what: 'too long ifname', env: { CNI_COMMAND: 'DEL', CNI_IFNAME: 'a'.repeat(16) }, code: 4 },
    { what: 'bad container id', env: { CNI_COMMAND: 'ADD', CNI_CONTAINERID: '-bad' }, code: 4 },
    { what: 'unknown command', env: { CNI_COMMAND: 'FOO' }, code: 4, msg: 'unknown CNI_COMMAND: FOO' },
    { what: 'lower-case command', env: { CNI_COMMAND: 'add' }, code: 4, msg: 'unknown CNI_COMMAND: add' },
    {
      what: 'unsupported cniVersion',
      env: { CNI_COMMAND: 'ADD' },
      stdin: conf({ cniVersion: '0.5.0' }),
      code: 1,
      msg: 'incompatible CNI versions',
      cniVersion: '1.1.0',
    },
    {
      what: 'CHECK with 0.3.1',
      env: { CNI_COMMAND: 'CHECK' },
      stdin: conf({ cniVersion: '0.3.1' }),
      code: 1,
      msg: 'config version does not allow CHECK',
      cniVersion: '0.3.1',
    },
    {
      what: 'GC with 1.0.0',
      env: { CNI_COMMAND: 'GC' },
      stdin: conf({ cniVersion: '1.0.0' }),
      code: 1,
      msg: 'config version does not allow GC',
      cniVersion: '1.0.0',
    },
    {
      what: 'STATUS with 0.4.0',
      env: { CNI_COMMAND: 'STATUS' },
      stdin: conf({ cniVersion: '0.4.0' }),
      code: 1,
      msg: 'config version does not allow STATUS',
    },
    {
      what: 'missing network name',
      env: { CNI_COMMAND: 'ADD' },
      stdin: JSON.stringify({ cniVersion: '0.4.0', type: 't' }),
      code: 7,
      msg: 'missing network name',
      cniVersion: '0.4.0',
    },
    {
      what: 'config without cniVersion or name',
      env: { CNI_COMMAND: 'ADD' },
      stdin: '{}',
      code: 7,
      cniVersion: '0.1.0',
    },
    { what: 'malformed CNI_ARGS on ADD', env: { CNI_COMMAND: 'ADD', CNI_ARGS: 'A=1;B' }, code: 4, msg: 'ARGS: invalid pair "B"' },
    { what: 'malformed CNI_ARGS on CHECK', env: { CNI_COMMAND: 'CHECK', CNI_ARGS: 'A' }, code: 4 },
  ];

  for (const c of cases) {
    it(`${c.what} -> code ${c.code}`, async () => {
      const { spec, calls } = testSpec();
      const o = await run(spec, { ...ENV, ...c.env }, { stdin: c.stdin ?? conf(), tty: c.tty });
      const obj = expectError(o, c.code, c.msg);
      if (c.cniVersion) assert.equal(obj.cniVersion, c.cniVersion);
      assert.deepEqual(calls.commands, [], 'handler not called');
    });
  }
});

describe('runPlugin: handler errors', () => {
  it('a plain Error becomes 999 with its message and no stack on stdout', async () => {
    const { spec } = testSpec({
      add: () => {
        throw new Error('netlink said no');
      },
    });
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: conf() });
    assert.equal(o.stdout, '{"cniVersion":"1.1.0","code":999,"msg":"netlink said no"}\n');
    assert.equal(o.code, 1);
    assert.ok(!o.stderr.includes('at '), 'no stack without CNI_DEBUG_STACK');
  });

  it('CNI_DEBUG_STACK writes the stack to stderr only', async () => {
    const { spec } = testSpec({
      del: async () => {
        throw new TypeError('oops');
      },
    });
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'DEL', CNI_DEBUG_STACK: '1' }, { stdin: conf({ cniVersion: '0.4.0' }) });
    assert.equal(o.stdout, '{"cniVersion":"0.4.0","code":999,"msg":"oops"}\n');
    assert.match(o.stderr, /TypeError: oops\n\s+at /);
  });

  it('a CniError passes through with details, in the config version', async () => {
    const { spec } = testSpec({
      add: () => {
        throw new CniError(11, 'try again later', 'lock held by 1234');
      },
    });
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: conf({ cniVersion: '0.3.1' }) });
    assert.equal(o.stdout, '{"cniVersion":"0.3.1","code":11,"msg":"try again later","details":"lock held by 1234"}\n');
  });

  it('a thrown non-Error value still gives one error object', async () => {
    const { spec } = testSpec({
      status: () => {
        throw 'plain string';
      },
    });
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'STATUS' }, { stdin: conf() });
    expectError(o, 999, 'plain string');
  });

  it('a STATUS availability error keeps its code', async () => {
    const { spec } = testSpec({
      status: () => {
        throw new CniError(50, 'plugin not available', 'metadata service unreachable');
      },
    });
    expectError(await run(spec, { ...ENV, CNI_COMMAND: 'STATUS' }, { stdin: conf() }), 50);
  });

  it('a result that cannot be written in the config version is one error, not a result', async () => {
    const { spec } = testSpec({ add: () => ({ interfaces: [{ name: 'eth0' }] }) });
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: conf({ cniVersion: '0.2.0' }) });
    const obj = expectError(o, 1, 'cannot convert: no valid IP addresses');
    assert.equal(obj.cniVersion, '0.2.0');
  });

  it('a failing stdout gives exit 1 without throwing', async () => {
    const { spec } = testSpec();
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: conf(), failStdout: true });
    assert.equal(o.code, 1);
    assert.match(o.stderr, /cannot write to stdout/);
  });
});

describe('runPlugin: success', () => {
  it('ADD prints the result in the config version (1.1.0)', async () => {
    const { spec, calls } = testSpec();
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: conf() });
    assert.equal(o.code, 0);
    assert.equal(
      o.stdout,
      '{"cniVersion":"1.1.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:16:00:05","mtu":1500,"sandbox":"/var/run/netns/x"}],' +
        '"ips":[{"interface":0,"address":"10.22.0.5/24","gateway":"10.22.0.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.22.0.1"}]}\n',
    );
    assert.deepEqual(calls.commands, ['ADD']);
  });

  it('ADD prints the result in the config version (0.4.0)', async () => {
    const { spec } = testSpec();
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: conf({ cniVersion: '0.4.0' }) });
    assert.equal(
      o.stdout,
      '{"cniVersion":"0.4.0","interfaces":[{"name":"eth0","mac":"0a:58:0a:16:00:05","sandbox":"/var/run/netns/x"}],' +
        '"ips":[{"version":"4","interface":0,"address":"10.22.0.5/24","gateway":"10.22.0.1"}],' +
        '"routes":[{"dst":"0.0.0.0/0","gw":"10.22.0.1"}],"dns":{}}\n',
    );
  });

  it('ADD prints the result in the config version (0.2.0 and no cniVersion = 0.1.0)', async () => {
    const { spec } = testSpec();
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: conf({ cniVersion: '0.2.0' }) });
    assert.equal(
      o.stdout,
      '{"cniVersion":"0.2.0","ip4":{"ip":"10.22.0.5/24","gateway":"10.22.0.1","routes":[{"dst":"0.0.0.0/0","gw":"10.22.0.1"}]},"dns":{}}\n',
    );
    const legacy = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: JSON.stringify({ name: 'n', type: 't' }) });
    assert.ok(legacy.stdout.startsWith('{"cniVersion":"0.1.0","ip4":'));
  });

  it('async ADD handlers are awaited', async () => {
    const { spec } = testSpec({
      add: async () => {
        await new Promise((r) => setTimeout(r, 5));
        return { ips: [{ address: '10.0.0.9/16' }] };
      },
    });
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD' }, { stdin: conf({ cniVersion: '1.0.0' }) });
    assert.equal(o.stdout, '{"cniVersion":"1.0.0","ips":[{"address":"10.0.0.9/16"}]}\n');
  });

  for (const command of ['DEL', 'CHECK', 'GC', 'STATUS']) {
    it(`${command} prints nothing on success`, async () => {
      const { spec, calls } = testSpec();
      const o = await run(spec, { ...ENV, CNI_COMMAND: command }, { stdin: conf() });
      assert.equal(o.code, 0);
      assert.equal(o.stdout, '');
      assert.deepEqual(calls.commands, [command]);
    });
  }

  it('missing optional handlers succeed silently', async () => {
    const { spec } = testSpec({ check: undefined, gc: undefined, status: undefined });
    for (const command of ['CHECK', 'GC', 'STATUS']) {
      const o = await run(spec, { ...ENV, CNI_COMMAND: command }, { stdin: conf() });
      assert.equal(o.code, 0, command);
      assert.equal(o.stdout, '', command);
    }
  });

  it('passes a complete request to the handler', async () => {
    const { spec, calls } = testSpec();
    const stdin = conf({ bridge: 'docker0', args: { cni: { ips: ['10.0.0.5'] } } });
    const env = { ...ENV, CNI_COMMAND: 'ADD' };
    await run(spec, env, { stdin });
    const req = calls.requests[0];
    assert.equal(req.command, 'ADD');
    assert.equal(req.containerId, 'ctr-1234');
    assert.equal(req.netns, ENV.CNI_NETNS);
    assert.equal(req.ifname, 'eth0');
    assert.deepEqual(req.args, [
      ['IgnoreUnknown', '1'],
      ['K8S_POD_NAME', 'web-0'],
    ]);
    assert.equal(req.rawArgs, ENV.CNI_ARGS);
    assert.deepEqual(req.path, ['/opt/cni/bin', '/usr/lib/cni']);
    assert.equal(req.config.name, 'rancher');
    assert.equal(req.config.bridge, 'docker0');
    assert.equal(req.stdin.toString(), stdin);
    assert.equal(req.env, env);
  });

  it('DEL without netns and with a malformed CNI_ARGS still reaches the handler', async () => {
    const { spec, calls } = testSpec();
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'DEL', CNI_NETNS: '', CNI_ARGS: 'A=1;junk;B=2' }, { stdin: conf() });
    assert.equal(o.code, 0);
    assert.equal(calls.requests[0].netns, '');
    assert.deepEqual(calls.requests[0].args, [
      ['A', '1'],
      ['B', '2'],
    ]);
  });

  it('GC and STATUS need only CNI_PATH', async () => {
    const { spec, calls } = testSpec();
    for (const command of ['GC', 'STATUS']) {
      const o = await run(spec, { CNI_COMMAND: command, CNI_PATH: '/opt/cni/bin' }, { stdin: conf() });
      assert.equal(o.code, 0, o.stdout);
    }
    assert.deepEqual(calls.commands, ['GC', 'STATUS']);
  });
});

describe('runPlugin: own network namespace', { skip: !existsSync('/proc/self/ns/net') }, () => {
  for (const command of ['ADD', 'DEL']) {
    it(`${command} refuses the plugin's own netns with code 8`, async () => {
      const { spec, calls } = testSpec();
      const o = await run(spec, { ...ENV, CNI_COMMAND: command, CNI_NETNS: '/proc/self/ns/net' }, { stdin: conf() });
      expectError(o, 8);
      assert.deepEqual(calls.commands, []);
    });
  }

  for (const override of ['1', 'true', 'TRUE']) {
    it(`CNI_NETNS_OVERRIDE=${override} allows it`, async () => {
      const { spec } = testSpec();
      const o = await run(
        spec,
        { ...ENV, CNI_COMMAND: 'ADD', CNI_NETNS: '/proc/self/ns/net', CNI_NETNS_OVERRIDE: override },
        { stdin: conf() },
      );
      assert.equal(o.code, 0, o.stdout);
    });
  }

  it('CNI_NETNS_OVERRIDE=0 does not', async () => {
    const { spec } = testSpec();
    const o = await run(
      spec,
      { ...ENV, CNI_COMMAND: 'ADD', CNI_NETNS: '/proc/self/ns/net', CNI_NETNS_OVERRIDE: '0' },
      { stdin: conf() },
    );
    expectError(o, 8);
  });

  it('the same netns through another path is detected', async () => {
    const { spec } = testSpec();
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'ADD', CNI_NETNS: `/proc/${process.pid}/ns/net` }, { stdin: conf() });
    expectError(o, 8);
  });

  it('CHECK is not subject to the rule', async () => {
    const { spec } = testSpec();
    const o = await run(spec, { ...ENV, CNI_COMMAND: 'CHECK', CNI_NETNS: '/proc/self/ns/net' }, { stdin: conf() });
    assert.equal(o.code, 0);
  });
});

describe('processIO in a real process', () => {
  const skelUrl = new URL('../../lib/skel.ts', import.meta.url).href;
  const script = `
    import { pluginMain } from ${JSON.stringify(skelUrl)};
    await pluginMain({
      name: 'child', version: '0.0.1',
      add: (req) => ({ ips: [{ address: '10.1.2.3/24' }], dns: { nameservers: [req.ifname] } }),
      del: () => { throw new Error('del failed'); },
    });
  `;
  const childEnv = (extra: Record<string, string>): NodeJS.ProcessEnv => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '' };
    return { ...env, ...extra };
  };

  it('ADD over real pipes', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      input: conf({ cniVersion: '1.0.0' }),
      env: childEnv({ ...ENV, CNI_COMMAND: 'ADD' }),
      encoding: 'utf8',
    });
    assert.equal(r.stdout, '{"cniVersion":"1.0.0","ips":[{"address":"10.1.2.3/24"}],"dns":{"nameservers":["eth0"]}}\n');
    assert.equal(r.status, 0, r.stderr);
  });

  it('errors exit 1 with one JSON line', () => {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      input: conf(),
      env: childEnv({ ...ENV, CNI_COMMAND: 'DEL' }),
      encoding: 'utf8',
    });
    assert.equal(r.stdout, '{"cniVersion":"1.1.0","code":999,"msg":"del failed"}\n');
    assert.equal(r.status, 1);
  });

  it('VERSION answers while stdin stays open', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: childEnv({ CNI_COMMAND: 'VERSION' }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(timer);
    child.stdin.destroy();
    assert.equal(status, 0);
    assert.equal(stdout, VERSION_LINE);
  });

  it('no CNI_COMMAND prints usage while stdin stays open', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      env: childEnv({}),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const status = await new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    clearTimeout(timer);
    child.stdin.destroy();
    assert.equal(status, 0);
    assert.match(stderr, /^CNI child plugin 0\.0\.1\n/);
  });

  it('readFdToEnd reads a whole file and an empty one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cattle-skel-'));
    try {
      const big = 'x'.repeat(200_000);
      writeFileSync(join(dir, 'big'), big);
      writeFileSync(join(dir, 'empty'), '');
      for (const [name, want] of [
        ['big', big],
        ['empty', ''],
      ]) {
        const fd = openSync(join(dir, name), 'r');
        try {
          assert.equal(readFdToEnd(fd).toString(), want);
        } finally {
          closeSync(fd);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
