// The metadata service over HTTP on loopback: index, versions, paths,
// negotiation, per-client answers, 404 shapes, long-poll, reloads.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';

import { parseListen } from '../../metadata/server.ts';
import { sleep, startMetadata, type TestMetadata } from './metadata-fixtures.ts';

const ANSWERS = {
  '2015-07-25': { default: { containers: [{ name: 'old', uuid: 'u-old' }] } },
  '2015-12-19': {
    default: {
      containers: [
        { name: 'Web-1', uuid: 'u-web', external_id: 'e1', primary_ip: '10.42.0.5', labels: { 'io.rancher.stack.name': 'web' } },
        { name: 'db', uuid: 'u-db', external_id: 'e2', primary_ip: '10.42.0.6' },
      ],
      hosts: [{ name: 'h1', uuid: 'u-h1', agent_ip: '192.0.2.10', memory: 2048, milli_cpu: 1500.5, local: true }],
      self: { host: { name: 'default-host' } },
    },
    '10.42.0.5': { self: { container: { name: 'Web-1', primary_ip: '10.42.0.5' } } },
  },
  '2016-07-29': { default: { containers: [] } },
};

interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

function get(base: string, path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Reply> {
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

const JSON_ACCEPT = { Accept: 'application/json' };

let md: TestMetadata;
before(async () => {
  md = await startMetadata(ANSWERS as never, { xff: true });
});
after(async () => {
  await md.close();
});

describe('endpoints', () => {
  it('GET / lists the versions and latest, as JSON or text', async () => {
    const j = await get(md.url, '/', JSON_ACCEPT);
    assert.equal(j.status, 200);
    assert.equal(j.headers['content-type'], 'application/json');
    assert.equal(j.headers['access-control-allow-origin'], '*');
    assert.deepEqual(JSON.parse(j.body), { '2015-07-25': '/2015-07-25', '2015-12-19': '/2015-12-19', '2016-07-29': '/2016-07-29', latest: '/latest' });
    const t = await get(md.url, '/');
    assert.equal(t.body, '2015-07-25\n2015-12-19\n2016-07-29\nlatest\n');
  });

  it('/<version> is the whole client tree, with the served version', async () => {
    const r = await get(md.url, '/2015-12-19', JSON_ACCEPT);
    const tree = JSON.parse(r.body) as Record<string, unknown>;
    assert.deepEqual(Object.keys(tree).sort(), ['containers', 'hosts', 'self', 'version']);
    assert.equal(tree.version, md.store.revision);
    const text = await get(md.url, '/2015-12-19/');
    assert.equal(text.body, 'containers/\nhosts/\nself/\nversion\n');
  });

  it('latest is the highest version when the file has no latest', async () => {
    const r = await get(md.url, '/latest/containers', JSON_ACCEPT);
    assert.deepEqual(JSON.parse(r.body), []);
  });

  it('array segments by index, name and uuid; objects by key', async () => {
    for (const p of ['/2015-12-19/containers/0/primary_ip', '/2015-12-19/containers/Web-1/primary_ip', '/2015-12-19/containers/u-web/primary_ip']) {
      const r = await get(md.url, p);
      assert.equal(r.status, 200, p);
      assert.equal(r.body, '10.42.0.5', p);
    }
    const encoded = await get(md.url, '/2015-12-19/containers/Web%2D1/name');
    assert.equal(encoded.body, 'Web-1');
    const ok = await get(md.url, '/2015-12-19/containers/0/labels/io.rancher.stack.name');
    assert.equal(ok.body, 'web');
  });

  it('a failed lookup is retried lowercased', async () => {
    const r = await get(md.url, '/2015-12-19/CONTAINERS/DB/PRIMARY_IP');
    assert.equal(r.body, '10.42.0.6');
  });

  it('text listing: arrays as index=name, scalars raw, numbers without trailing zeros', async () => {
    assert.equal((await get(md.url, '/2015-12-19/containers')).body, '0=Web-1\n1=db\n');
    assert.equal((await get(md.url, '/2015-12-19/hosts/h1/memory')).body, '2048');
    assert.equal((await get(md.url, '/2015-12-19/hosts/h1/milli_cpu')).body, '1500.5');
    assert.equal((await get(md.url, '/2015-12-19/hosts/h1/local')).body, 'true');
  });

  it('YAML on request', async () => {
    const r = await get(md.url, '/2015-12-19/hosts/0', { Accept: 'application/x-yaml' });
    assert.equal(r.headers['content-type'], 'application/yaml');
    assert.equal(r.body, 'agent_ip: 192.0.2.10\nlocal: true\nmemory: 2048\nmilli_cpu: 1500.5\nname: h1\nuuid: u-h1\n');
  });

  it('404s: rancher-metadata shapes in JSON and text; unknown version says so', async () => {
    const j = await get(md.url, '/2015-12-19/nope', JSON_ACCEPT);
    assert.equal(j.status, 404);
    assert.deepEqual(JSON.parse(j.body), { code: 404, message: 'Not found', type: 'error' });
    const t = await get(md.url, '/2015-12-19/nope');
    assert.equal(t.body, 'Not found\n');
    const v = await get(md.url, '/2099-01-01/containers', JSON_ACCEPT);
    assert.deepEqual(JSON.parse(v.body), { code: 404, message: 'Invalid version', type: 'error' });
    const idx = await get(md.url, '/2015-12-19/containers/7');
    assert.equal(idx.status, 404);
  });

  it('HEAD has headers only; other methods are 405', async () => {
    const h = await get(md.url, '/2015-12-19/containers', JSON_ACCEPT, 'HEAD');
    assert.equal(h.status, 200);
    assert.equal(h.body, '');
    assert.ok(Number(h.headers['content-length']) > 10);
    const p = await get(md.url, '/2015-12-19/containers', JSON_ACCEPT, 'POST');
    assert.equal(p.status, 405);
  });
});

describe('per-client answers', () => {
  it('a client with its own entry gets it, merged over default; others get default', async () => {
    const mine = await get(md.url, '/2015-12-19/self/container/name', { 'X-Forwarded-For': '10.42.0.5' });
    assert.equal(mine.body, 'Web-1');
    const merged = await get(md.url, '/2015-12-19/containers/1/name', { 'X-Forwarded-For': '10.42.0.5' });
    assert.equal(merged.body, 'db'); // default keys are merged into the client's tree
    const hostSelf = await get(md.url, '/2015-12-19/self/container', { 'X-Forwarded-For': '10.42.0.99' });
    assert.equal(hostSelf.status, 404); // default has no self/container, like the host netns in Rancher
  });

  it('without --xff the header is ignored', async () => {
    const other = await startMetadata(ANSWERS as never, { xff: false });
    try {
      const r = await get(other.url, '/2015-12-19/self/container/name', { 'X-Forwarded-For': '10.42.0.5' });
      assert.equal(r.status, 404);
    } finally {
      await other.close();
    }
  });
});

describe('long-poll and reloads', () => {
  it('returns at once when the value already differs', async () => {
    const r = await get(md.url, '/2015-12-19/version?wait=true&value=stale&maxWait=5');
    assert.equal(r.body, md.store.revision);
  });

  it('holds until maxWait when nothing changes, then answers with the same value', async () => {
    const v = md.store.revision;
    const t0 = performance.now();
    const r = await get(md.url, `/2015-12-19/version?wait=true&value=${v}&maxWait=1`);
    const ms = performance.now() - t0;
    assert.equal(r.body, v);
    // Held until maxWait (a lower bound, not a wall-clock threshold on speed).
    assert.ok(ms >= 950, `${ms} ms`);
  });

  it('wakes on POST /v1/reload, which bumps the version and replies OK', async () => {
    const v = md.store.revision;
    const t0 = performance.now();
    const waiting = get(md.url, `/2015-12-19/version?wait=true&value=${v}&maxWait=10`, JSON_ACCEPT);
    await sleep(100);
    const reload = await new Promise<Reply>((resolve, reject) => {
      const req = http.request(md.reloadUrl, { method: 'POST', agent: false }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(reload.status, 200);
    assert.equal(reload.body, 'OK');
    assert.equal(reload.headers['access-control-allow-origin'], '*');
    const r = await waiting;
    assert.notEqual(JSON.parse(r.body), v);
    assert.ok(performance.now() - t0 < 2000);
  });

  it('wakes when the answers file changes, and the new record is served', async () => {
    const v = md.store.revision;
    const waiting = get(md.url, `/2015-12-19/version?wait=true&value=${v}&maxWait=10`);
    await sleep(50);
    const written = performance.now();
    await md.add({ externalId: 'new-1', ip: '10.42.0.77' });
    const r = await waiting;
    assert.notEqual(r.body, v);
    assert.ok(performance.now() - written < 500, 'woke promptly');
    const rec = await get(md.url, '/2015-12-19/containers/r-new-1/primary_ip');
    assert.equal(rec.body, '10.42.0.77');
  });

  it('a bad answers file is refused with a clear error and the old answers are kept', async () => {
    const before = md.store.revision;
    const good = fs.readFileSync(md.file, 'utf8');
    fs.writeFileSync(md.file, '{"2015-12-19": {"default": [1, 2]}}');
    const r = await md.store.reload();
    assert.equal(r.ok, false);
    assert.match((r as { error: string }).error, /"2015-12-19"\."default" must be an object/);
    fs.writeFileSync(md.file, '{not json');
    const r2 = await md.store.reload();
    assert.match((r2 as { error: string }).error, /answers\.json: invalid JSON/);
    assert.equal(md.store.revision, before);
    assert.equal((await get(md.url, '/2015-12-19/containers/db/primary_ip')).body, '10.42.0.6');
    fs.writeFileSync(md.file, good);
    assert.equal((await md.store.reload()).ok, true);
  });

  it('the reload listener refuses other paths and methods', async () => {
    const base = md.reloadUrl.replace('/v1/reload', '');
    assert.equal((await get(base, '/v1/reload')).status, 405);
    assert.equal((await get(base, '/other', {}, 'POST')).status, 404);
  });

  it('a client that hangs up leaves no waiter behind', async () => {
    const v = md.store.revision;
    await new Promise<void>((resolve) => {
      const req = http.get(`${md.url}/2015-12-19/version?wait=true&value=${v}&maxWait=30`, { agent: false });
      req.on('error', () => resolve());
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    await sleep(50);
    const listeners = (md.store as unknown as { listeners: Set<unknown> }).listeners;
    assert.equal(listeners.size, 0);
  });
});

describe('YAML answers file', () => {
  it('is served like JSON, with aliases', async () => {
    const yaml = [
      "'2015-12-19': &v",
      '  default:',
      '    containers:',
      '    - &c1',
      '      name: web',
      '      primary_ip: 10.42.1.1',
      '    self:',
      '      container: *c1',
      'latest: *v',
      '',
    ].join('\n');
    const y = await startMetadata(undefined, { fileName: 'answers.yml', fileText: yaml });
    try {
      assert.equal((await get(y.url, '/latest/self/container/primary_ip')).body, '10.42.1.1');
      assert.equal((await get(y.url, '/2015-12-19/containers/web/name')).body, 'web');
    } finally {
      await y.close();
    }
  });
});

describe('parseListen', () => {
  it('reads ADDR:PORT forms and refuses others', () => {
    assert.deepEqual(parseListen('169.254.169.250:80'), { host: '169.254.169.250', port: 80 });
    assert.deepEqual(parseListen('[::1]:8080'), { host: '::1', port: 8080 });
    assert.deepEqual(parseListen(':80'), { host: '0.0.0.0', port: 80 });
    assert.throws(() => parseListen('localhost'), /expected ADDR:PORT/);
    assert.throws(() => parseListen('1.2.3.4:70000'), /invalid listen address/);
  });
});
