// lib/metadata-client: per-request timeouts, HTTP and JSON errors, the
// long-poll request, and addresses as users write them. Loopback only.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  httpGetJson, httpGetText, longPoll, MAX_BODY_BYTES, metadataBaseUrl, MetadataHttpError, MetadataTimeoutError,
} from '../../lib/metadata-client.ts';
import { deadAddress, startFakeServer } from './metadata-fixtures.ts';

describe('metadataBaseUrl', () => {
  it('accepts host, host:port, bracketed or bare IPv6 and URLs', () => {
    assert.equal(metadataBaseUrl('169.254.169.250'), 'http://169.254.169.250');
    assert.equal(metadataBaseUrl('10.0.0.1:8080'), 'http://10.0.0.1:8080');
    assert.equal(metadataBaseUrl('fd00::1'), 'http://[fd00::1]');
    assert.equal(metadataBaseUrl('[fd00::1]:80'), 'http://[fd00::1]:80');
    assert.equal(metadataBaseUrl('http://md.local:81/'), 'http://md.local:81');
  });
});

describe('httpGet*', () => {
  it('sends Accept: application/json and returns the parsed body', async () => {
    let accept: string | undefined;
    const fake = await startFakeServer((req, res) => {
      accept = req.headers.accept;
      res.writeHead(200).end('{"a":[1]}');
    });
    try {
      assert.deepEqual(await httpGetJson(`http://${fake.address}/x`, { timeoutMs: 2000 }), { a: [1] });
      assert.equal(accept, 'application/json');
    } finally {
      await fake.close();
    }
  });

  it('non-200 is a MetadataHttpError with the status and a body snippet', async () => {
    const fake = await startFakeServer((_req, res) => res.writeHead(404).end('{"code":404,"message":"Not found","type":"error"}'));
    try {
      await assert.rejects(httpGetText(`http://${fake.address}/v/version`, { timeoutMs: 2000 }), (e: Error) =>
        e instanceof MetadataHttpError && e.status === 404 && /HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/v\/version: \{"code":404/.test(e.message));
    } finally {
      await fake.close();
    }
  });

  it('garbage is an error naming the URL', async () => {
    const fake = await startFakeServer((_req, res) => res.writeHead(200).end('<html>'));
    try {
      await assert.rejects(httpGetJson(`http://${fake.address}/c`, { timeoutMs: 2000 }), /invalid JSON from http:\/\/127\.0\.0\.1:\d+\/c: "<html>"/);
    } finally {
      await fake.close();
    }
  });

  it('a stalled server hits the per-request timeout (headers or body)', async () => {
    const fake = await startFakeServer((req, res) => {
      if (req.url === '/body') {
        res.writeHead(200);
        res.write('[');
      } // else: never answer
    });
    try {
      for (const p of ['/none', '/body']) {
        const t0 = performance.now();
        await assert.rejects(httpGetText(`http://${fake.address}${p}`, { timeoutMs: 200 }), (e: Error) => e instanceof MetadataTimeoutError && /within 200 ms/.test(e.message));
        const ms = performance.now() - t0;
        assert.ok(ms >= 190 && ms < 800, `${p}: ${ms} ms`);
      }
    } finally {
      await fake.close();
    }
  });

  it('connection refused names the URL and the code', async () => {
    const dead = await deadAddress();
    await assert.rejects(httpGetText(`http://${dead}/x`, { timeoutMs: 1000 }), /cannot reach http:\/\/127\.0\.0\.1:\d+\/x: ECONNREFUSED/);
  });

  it('answers above the size cap are refused', async () => {
    const fake = await startFakeServer((_req, res) => {
      res.writeHead(200);
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent <= MAX_BODY_BYTES) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('error', () => {});
      pump();
    });
    try {
      await assert.rejects(httpGetText(`http://${fake.address}/big`, { timeoutMs: 10_000 }), /larger than/);
    } finally {
      await fake.close();
    }
  });
});

describe('longPoll', () => {
  it('asks with wait, the current value and whole-second maxWait within 1..120', async () => {
    const urls: string[] = [];
    const fake = await startFakeServer((req, res) => {
      urls.push(req.url!);
      res.writeHead(200).end('"v2"');
    });
    try {
      assert.equal(await longPoll(`http://${fake.address}/2015-12-19/version`, 'v 1&x', { maxWaitS: 2.7, timeoutMs: 5000 }), 'v2');
      await longPoll(`http://${fake.address}/2015-12-19/version`, 'a', { maxWaitS: 999, timeoutMs: 5000 });
      await longPoll(`http://${fake.address}/2015-12-19/version`, 'a', { maxWaitS: 0, timeoutMs: 5000 });
      assert.deepEqual(urls, [
        '/2015-12-19/version?wait=true&value=v%201%26x&maxWait=2',
        '/2015-12-19/version?wait=true&value=a&maxWait=120',
        '/2015-12-19/version?wait=true&value=a&maxWait=1',
      ]);
    } finally {
      await fake.close();
    }
  });
});
