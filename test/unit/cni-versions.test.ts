import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { CniError } from '../../lib/cni/errors.ts';
import {
  compareVersions,
  CURRENT_VERSION,
  isSupportedVersion,
  parseVersion,
  SUPPORTED_VERSIONS,
  versionAtLeast,
  versionInfoJSON,
} from '../../lib/cni/versions.ts';

describe('versions', () => {
  it('current version is 1.1.0 and the supported list is the library set, oldest first', () => {
    assert.equal(CURRENT_VERSION, '1.1.0');
    assert.deepEqual([...SUPPORTED_VERSIONS], ['0.1.0', '0.2.0', '0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0']);
    assert.ok(Object.isFrozen(SUPPORTED_VERSIONS));
  });

  it('versionInfoJSON serialises exactly as the VERSION reply', () => {
    assert.equal(
      JSON.stringify(versionInfoJSON()),
      '{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}',
    );
  });

  it('versionInfoJSON returns a fresh copy', () => {
    const a = versionInfoJSON();
    a.supportedVersions.push('9.9.9');
    assert.equal(versionInfoJSON().supportedVersions.length, 7);
  });

  it('compares numerically, not lexically', () => {
    assert.ok(compareVersions('0.10.0', '0.9.0') > 0);
    assert.ok(compareVersions('0.3.0', '0.3.1') < 0);
    assert.equal(compareVersions('1.0.0', '1.0.0'), 0);
    assert.ok(compareVersions('1.0.0', '0.4.0') > 0);
    assert.ok(compareVersions('2.0.0', '10.0.0') < 0);
  });

  it('versionAtLeast', () => {
    assert.equal(versionAtLeast('0.4.0', '0.4.0'), true);
    assert.equal(versionAtLeast('1.0.0', '0.4.0'), true);
    assert.equal(versionAtLeast('0.3.1', '0.4.0'), false);
    assert.equal(versionAtLeast('1.0.0', '1.1.0'), false);
  });

  it('rejects malformed versions', () => {
    for (const bad of ['', '1', '1.0', '1.0.0.0', 'v1.0.0', '1.0.x', ' 1.0.0']) {
      assert.throws(() => parseVersion(bad), CniError, bad);
    }
    assert.deepEqual(parseVersion('0.3.1'), [0, 3, 1]);
  });

  it('isSupportedVersion is exact', () => {
    assert.equal(isSupportedVersion('0.3.1'), true);
    assert.equal(isSupportedVersion('0.3.2'), false);
    assert.equal(isSupportedVersion('1.1'), false);
    assert.equal(isSupportedVersion('1.2.0'), false);
  });
});
