// cattle-net's metadata source against the real cattle-metadata server code (in process): the
// answers of one environment as 2016-07-29 and as 2015-12-19 give the same desired state, and a
// server that serves 2015-12-19 only is read as such (auto), or refused when 2016-07-29 is forced.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';

import { desiredState } from '../../agent/desired.ts';
import { MetadataSource } from '../../agent/metadata.ts';
import type { Answers } from '../../metadata/answers.ts';
import { checkEnvironment, checkEnvironmentData, deriveAnswers } from '../../metadata/environment.ts';
import { createMetadataHandler, listen, type RunningServer } from '../../metadata/server.ts';
import { AnswersStore } from '../../metadata/store.ts';

const NET = 'net-managed';
const ENV = {
  hosts: [
    { uuid: 'host-a', name: 'Host-A', agent_ip: '192.168.100.11' },
    { uuid: 'host-b', name: 'Host-B', agent_ip: '192.168.100.12' },
  ],
  networks: [{ uuid: NET, name: 'managed', is_default: true, metadata: { cniConfig: { '10-rancher-vxlan.conf': { type: 'rancher-bridge' } } } }],
  containers: [
    { uuid: 'c1', name: 'Web-1', external_id: 'e1', host_uuid: 'host-b', network_uuid: NET, primary_ip: '10.42.2.10', state: 'running' },
    { uuid: 'c2', name: 'Web-2', external_id: 'e2', host_uuid: 'host-b', network_uuid: NET, primary_ip: '10.42.2.11', state: 'stopped' },
    { uuid: 'c3', name: 'Db', external_id: 'e3', host_uuid: 'host-a', network_uuid: NET, primary_ip: '10.42.1.10', state: 'running' },
  ],
};

/** Every version's answers for host A, as `cattle-metadata serve --environment … --self-host host-a` serves them. */
function answers(): Answers {
  const { data } = checkEnvironmentData(ENV, 'test');
  return deriveAnswers(checkEnvironment(data), 'host-a').answers;
}

async function serve(a: Answers): Promise<RunningServer> {
  return listen(createMetadataHandler({ store: new AnswersStore(undefined, a) }), { host: '127.0.0.1', port: 0 });
}

describe('metadata API versions (2016-07-29, 2015-12-19 accepted)', () => {
  let both: RunningServer;
  let old: RunningServer;
  before(async () => {
    const all = answers();
    both = await serve(all);
    old = await serve({ '2015-12-19': all['2015-12-19']! });
  });
  after(async () => {
    await both.close();
    await old.close();
  });

  it('both shapes give the same desired state (names differ in case only)', async () => {
    const a = new MetadataSource(both.address, '2016-07-29');
    const b = new MetadataSource(both.address, '2015-12-19');
    const [ea, eb] = [await a.environment(), await b.environment()];
    assert.equal((ea.containers[0] as { name: string }).name, 'web-1', '2016-07-29 lower-cases names');
    assert.equal((eb.containers[0] as { name: string }).name, 'Web-1');
    const [da, db] = [desiredState(ea), desiredState(eb)];
    assert.deepEqual([...da.neighbours], [['10.42.2.10', '0e:00:c0:a8:64:0c']]);
    assert.deepEqual([da.selfIp, [...da.peers], [...da.neighbours]], [db.selfIp, [...db.peers], [...db.neighbours]]);
  });

  it('auto reads 2016-07-29 where it is served', async () => {
    const s = new MetadataSource(both.address);
    await s.version();
    assert.equal(s.apiVersion, '2016-07-29');
    assert.match(s.base, /\/2016-07-29$/);
  });

  it('auto falls back to 2015-12-19 on a server without 2016-07-29 (404), and reads the same fields', async () => {
    const s = new MetadataSource(old.address);
    const switched: string[] = [];
    s.onSwitch = (from, to) => switched.push(`${from} → ${to}`);
    assert.match(await s.version(), /^\d+$/);
    assert.deepEqual(switched, ['2016-07-29 → 2015-12-19']);
    assert.match(s.base, /\/2015-12-19$/);
    const d = desiredState(await s.environment());
    assert.deepEqual([d.selfIp, [...d.peers.keys()], [...d.neighbours.keys()]], ['192.168.100.11', ['192.168.100.12'], ['10.42.2.10']]);
    // The long-poll goes to the version now read.
    assert.match(await s.waitForChange('0', 1), /^\d+$/);
  });

  it('a forced version is not switched: 2016-07-29 on that server is an HTTP 404', async () => {
    const s = new MetadataSource(old.address, '2016-07-29');
    await assert.rejects(s.version(), /HTTP 404/);
    assert.equal(s.apiVersion, '2016-07-29');
  });
});
