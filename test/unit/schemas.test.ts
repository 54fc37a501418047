// The JSON Schemas shipped in conf-examples/schemas (the ones the plugins'
// precompiled validators come from) validate every example and reject broken
// ones. ajv is a dev dependency: it is used here, never at run time.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { Ajv } from 'ajv';

const dir = path.resolve(import.meta.dirname, '..', '..', 'conf-examples');

function compile() {
  const ajv = new Ajv({ coerceTypes: true, useDefaults: true, strict: false, allErrors: true });
  for (const f of fs.readdirSync(path.join(dir, 'schemas'))) {
    ajv.addSchema(JSON.parse(fs.readFileSync(path.join(dir, 'schemas', f), 'utf8')));
  }
  return ajv.getSchema('cni-network.schema.json')!;
}

function examples(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory() && e.name !== 'schemas') walk(p);
      else if (/\.(conflist|conf)$/.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

test('every example network configuration validates and points editors at the schema', () => {
  const validate = compile();
  const files = examples();
  assert.ok(files.length >= 5, files.join(', '));
  for (const f of files) {
    const doc = JSON.parse(fs.readFileSync(f, 'utf8')) as Record<string, unknown>;
    assert.ok(validate(doc), `${path.relative(dir, f)}: ${JSON.stringify(validate.errors)}`);
    assert.match(String(doc.$schema), /schemas\/cni-network\.schema\.json$/, `${path.relative(dir, f)} names its schema`);
  }
});

test('broken configurations are rejected with the field named', () => {
  const validate = compile();
  const bad: [object, RegExp][] = [
    [{ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'cattle-bridge', mtu: 'big', ipam: { type: 'host-local' } }] }, /mtu/],
    [{ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'cattle-bridge', vlan: 9999, ipam: { type: 'host-local' } }] }, /vlan/],
    [{ name: 'x', type: 'rancher-bridge', ipam: { type: 'rancher-cni-ipam', subnetPrefixSize: 'sixteen' } }, /subnetPrefixSize/],
    [{ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'cattle-ptp', hostVethMac: 'not-a-mac', ipam: { type: 'host-local' } }] }, /hostVethMac/],
    [{ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'cattle-bridge', disableContainerInterface: 'sometimes' }] }, /disableContainerInterface/],
    [{ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'cattle-bridge', ipam: { type: '' } }] }, /ipam\/type/],
    // Only the bridge has L2-only networks: ptp needs an IPAM type.
    [{ cniVersion: '1.0.0', name: 'x', plugins: [{ type: 'cattle-ptp', ipam: {} }] }, /ipam/],
    [{ cniVersion: '7.0.0', name: 'x', plugins: [{ type: 'bridge' }] }, /cniVersion/],
    [{ cniVersion: '1.0.0', plugins: [{ type: 'bridge' }] }, /name/],
  ];
  for (const [doc, field] of bad) {
    assert.equal(validate(doc), false, JSON.stringify(doc));
    assert.match(JSON.stringify(validate.errors), field);
  }
});
