// lib/metadata-client: per-request timeouts, HTTP/1.0 framing, HTTP and JSON
// errors, size caps (cut while streaming, not after), lists read object by
// object, the long-poll request, and addresses as users write them. Loopback only.
import assert from 'node:assert/strict';
import type http from 'node:http';
import net from 'node:net';
import { describe, it } from 'node:test';

import {
  httpGetJson, httpGetObjectList, httpGetText, longPoll, MAX_ITEM_BYTES, MAX_LIST_BYTES, MAX_VALUE_BYTES, metadataBaseUrl,
  MetadataHttpError, MetadataTimeoutError, MetadataTooLargeError, ObjectListReader,
} from '../../lib/metadata-client.ts';
import { deadAddress, startFakeServer } from './metadata-fixtures.ts';

interface RawServer {
  address: string;
  /** What each client sent, as text. */
  requests: string[];
  close(): Promise<void>;
}

/** A TCP server on 127.0.0.1 that answers each request with exactly what the test writes. */
async function startRawServer(answer: (socket: net.Socket) => void): Promise<RawServer> {
  const requests: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let text = '';
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      requests.push(text);
      answer(socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

/**
 * A 200 answer of `bytes` (repeats of `unit` after `head`), written as fast as the client reads.
 * `hungUp` resolves true when the client closed before it was all sent.
 */
async function startStreamingServer(bytes: number, unit: string, head = '', tail = '') {
  let resolveHungUp!: (early: boolean) => void;
  const hungUp = new Promise<boolean>((resolve) => (resolveHungUp = resolve));
  const one = Buffer.from(unit);
  const chunk = Buffer.concat(Array.from({ length: Math.ceil(65536 / one.length) }, () => one));
  const fake = await startFakeServer((_req, res: http.ServerResponse) => {
    let sent = 0;
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.write(head);
    res.on('error', () => {});
    res.on('close', () => resolveHungUp(sent < bytes));
    const pump = (): void => {
      while (sent < bytes) {
        sent += chunk.length;
        if (!res.write(chunk)) {
          res.once('drain', pump);
          return;
        }
      }
      res.end(tail);
    };
    pump();
  });
  return { fake, hungUp };
}

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
        await assert.rejects(httpGetText(`http://${fake.address}${p}`, { timeoutMs: 200 }), (e: Error) =>
          e instanceof MetadataTimeoutError && e.timeoutMs === 200 && /^no answer from http:\/\/127\.0\.0\.1:\d+\/(none|body) within 200 ms$/.test(e.message));
      }
      await assert.rejects(httpGetObjectList(`http://${fake.address}/body`, { timeoutMs: 200 }, () => {}), MetadataTimeoutError);
    } finally {
      await fake.close();
    }
  });

  it('connection refused names the URL and the code', async () => {
    const dead = await deadAddress();
    await assert.rejects(httpGetText(`http://${dead}/x`, { timeoutMs: 1000 }), /cannot reach http:\/\/127\.0\.0\.1:\d+\/x: ECONNREFUSED/);
  });

  it(`a value answer over ${MAX_VALUE_BYTES / 1024} KiB is cut while it streams, not read first`, async () => {
    const { fake, hungUp } = await startStreamingServer(50 * 1024 * 1024, ' ');
    try {
      await assert.rejects(httpGetText(`http://${fake.address}/big`, { timeoutMs: 10_000 }), (e: Error) =>
        e instanceof MetadataTooLargeError && e.capBytes === MAX_VALUE_BYTES
        && /^answer from http:\/\/127\.0\.0\.1:\d+\/big is larger than 64 KiB: stopped reading$/.test(e.message));
      assert.equal(await hungUp, true, 'the client hung up before the server had sent it all');
    } finally {
      await fake.close();
    }
  });

  it('an answer announced over the cap is refused before any of its body is read', async () => {
    const raw = await startRawServer((socket) => socket.write(`HTTP/1.0 200 OK\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`)); // then nothing
    try {
      await assert.rejects(httpGetText(`http://${raw.address}/v`, { timeoutMs: 10_000 }), MetadataTooLargeError);
    } finally {
      await raw.close();
    }
  });
});

describe('HTTP/1.0 framing', () => {
  it('asks GET path?query HTTP/1.0 with Host and Accept: application/json', async () => {
    const raw = await startRawServer((socket) => socket.end('HTTP/1.0 200 OK\r\n\r\n"v"'));
    try {
      assert.equal(await httpGetJson(`http://${raw.address}/2015-12-19/version?wait=true&value=a%20b`, { timeoutMs: 2000 }), 'v');
      assert.deepEqual(raw.requests, [`GET /2015-12-19/version?wait=true&value=a%20b HTTP/1.0\r\nHost: ${raw.address}\r\nAccept: application/json\r\n\r\n`]);
    } finally {
      await raw.close();
    }
  });

  it('a body ends at Content-Length even when the server keeps the connection open, else at the close', async () => {
    const cases: [string, string][] = [
      ['HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n"abc"', 'abc'], // and nothing more, never closed
      ['HTTP/1.0 200 OK\r\ncontent-length: 5\r\n\r\n"abc"and then some', 'abc'],
    ];
    for (const [answer, want] of cases) {
      const raw = await startRawServer((socket) => socket.write(answer));
      try {
        assert.equal(await httpGetJson(`http://${raw.address}/v`, { timeoutMs: 5000 }), want);
      } finally {
        await raw.close();
      }
    }
    const closing = await startRawServer((socket) => socket.end('HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n[1,\n2]'));
    try {
      assert.deepEqual(await httpGetJson(`http://${closing.address}/v`, { timeoutMs: 5000 }), [1, 2]);
    } finally {
      await closing.close();
    }
  });

  it('broken answers are readable errors', async () => {
    const cases: [string, RegExp][] = [
      ['', /cannot reach http:\/\/127\.0\.0\.1:\d+\/v: the connection closed before an answer$/],
      ['SSH-2.0-OpenSSH\r\n\r\n', /unexpected answer from .*: not HTTP: "SSH-2\.0-OpenSSH"$/],
      ['HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n"abc"', /reading the answer from .* failed: it ends after 5 of 10 bytes$/],
      ['HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n"a"\r\n0\r\n\r\n', /Transfer-Encoding chunked to an HTTP\/1\.0 request/],
      ['HTTP/1.0 200 OK\r\nContent-Length: lots\r\n\r\n', /Content-Length "lots"/],
      ['HTTP/1.0 503 Busy\r\n\r\ntry later', /HTTP 503 from http:\/\/127\.0\.0\.1:\d+\/v: try later$/],
    ];
    for (const [answer, pattern] of cases) {
      const raw = await startRawServer((socket) => socket.end(answer));
      try {
        await assert.rejects(httpGetText(`http://${raw.address}/v`, { timeoutMs: 5000 }), pattern);
      } finally {
        await raw.close();
      }
    }
  });
});

/** The objects ObjectListReader finds in `text` fed as `chunks`. */
function readList(chunks: Buffer[], mentioning?: string[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  const reader = new ObjectListReader('http://md/list', (o) => out.push(o), mentioning);
  for (const c of chunks) reader.write(c);
  reader.end();
  return out;
}

describe('lists, object by object', () => {
  const list = [
    { a: 'x,]}"\\', b: [1, { c: [] }], 'é€😀': 'ünï ,{[' },
    {},
    { nested: { deeper: { deepest: [[[{}]]] } }, n: -1.5e3, t: true, f: false, z: null },
    { external_id: 'c0ffee', labels: { 'io.rancher.x': 'y' } },
  ];
  const text = Buffer.from(` [ ${list.map((o) => JSON.stringify(o)).join(' ,\n')} ]\n`);

  it('cut anywhere between reads, even inside a UTF-8 character, the objects come out whole', () => {
    for (let cut = 0; cut <= text.length; cut++) {
      assert.deepEqual(readList([text.subarray(0, cut), text.subarray(cut)]), list, `cut at ${cut}`);
    }
    assert.deepEqual(readList([...text].map((b) => Buffer.from([b]))), list, 'byte by byte');
    assert.deepEqual(readList([Buffer.from('[]')]), []);
  });

  it('only the objects that mention what is asked for are parsed', () => {
    assert.deepEqual(readList([text], ['"c0ffee"']), [list[3]]);
    assert.deepEqual(readList([text], ['"nobody"']), []);
  });

  it('anything but a list of objects is an error that says what is wrong', () => {
    const cases: [string, RegExp][] = [
      ['', /invalid JSON from http:\/\/md\/list: an empty answer$/],
      ['{"a": 1}', /unexpected answer from http:\/\/md\/list: expected a JSON array, got "\{\\"a\\": 1\}"$/],
      ['[{}, 2]', /an element is not an object: "2\]"/],
      ['[{},,{}]', /an empty element before ",\{\}\]"/],
      ['[{},]', /an empty element before "\]"/],
      ['[{}] {}', /text after the end of the list: "\{\}"/],
      ['[{"a": 1}', /the list is cut short/],
      ['[{"a": tru}]', /invalid JSON from http:\/\/md\/list: "\{\\"a\\": tru\}"$/],
      [`[${'['.repeat(20)}${']'.repeat(20)}]`, /nested deeper than 16 levels/],
    ];
    for (const [body, pattern] of cases) assert.throws(() => readList([Buffer.from(body)]), pattern, body);
  });

  it('over the HTTP client, with mentioning', async () => {
    const fake = await startFakeServer((_req, res) => res.writeHead(200).end(text));
    try {
      const seen: unknown[] = [];
      await httpGetObjectList(`http://${fake.address}/l`, { timeoutMs: 2000, mentioning: ['"c0ffee"'] }, (o) => seen.push(o));
      assert.deepEqual(seen, [list[3]]);
    } finally {
      await fake.close();
    }
  });

  it(`a list over ${MAX_LIST_BYTES / 1048576} MiB is cut while it streams`, async () => {
    const { fake, hungUp } = await startStreamingServer(50 * 1024 * 1024, `${JSON.stringify({ name: 'web', labels: { a: 'b' } })},`, '[', '{}]');
    try {
      await assert.rejects(httpGetObjectList(`http://${fake.address}/l`, { timeoutMs: 10_000 }, () => {}), (e: Error) =>
        e instanceof MetadataTooLargeError && /^answer from http:\/\/127\.0\.0\.1:\d+\/l is larger than 16 MiB: stopped reading$/.test(e.message));
      assert.equal(await hungUp, true);
    } finally {
      await fake.close();
    }
  });

  it(`an object over ${MAX_ITEM_BYTES / 1024} KiB is refused while it streams`, async () => {
    const { fake, hungUp } = await startStreamingServer(50 * 1024 * 1024, 'x', '[{"blob": "', '"}]');
    try {
      await assert.rejects(httpGetObjectList(`http://${fake.address}/l`, { timeoutMs: 10_000 }, () => {}),
        /MetadataTooLargeError: an element of the answer from http:\/\/127\.0\.0\.1:\d+\/l is larger than 64 KiB: stopped reading$/);
      assert.equal(await hungUp, true);
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
