// Content negotiation and the text/JSON/YAML renderings of rancher-metadata.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { loadYaml, needsLoading, negotiate, queryEscape, renderError, renderText, renderValue } from '../../metadata/render.ts';

describe('negotiate', () => {
  it('text by default and for */*; JSON and YAML when asked', () => {
    assert.equal(negotiate(undefined), 'text');
    assert.equal(negotiate(''), 'text');
    assert.equal(negotiate('*/*'), 'text');
    assert.equal(negotiate('application/json'), 'json');
    assert.equal(negotiate('application/json, text/plain;q=0.5'), 'json');
    assert.equal(negotiate('text/plain;q=0.2, application/json;q=0.9'), 'json');
    assert.equal(negotiate('application/*'), 'json');
    for (const y of ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']) assert.equal(negotiate(y), 'yaml', y);
    assert.equal(negotiate('text/html'), 'text');
    assert.equal(negotiate('application/json;q=0'), 'text');
    assert.equal(negotiate('*/*;q=0.1, application/json'), 'json');
  });
});

describe('renderText', () => {
  it('scalars raw', () => {
    assert.equal(renderText('10.42.0.5'), '10.42.0.5');
    assert.equal(renderText(null), '');
    assert.equal(renderText(true), 'true');
    assert.equal(renderText(false), 'false');
    assert.equal(renderText(20), '20');
    assert.equal(renderText(1.25), '1.25');
    assert.equal(renderText(0.1 + 0.2), '0.3');
  });

  it('objects: sorted keys, "/" for containers, keys query-escaped', () => {
    assert.equal(renderText({ b: 1, a: { x: 1 }, 'c d': [], 'io.rancher/x': 'y' }), 'a/\nb\nc+d/\nio.rancher%2Fx\n');
    assert.equal(renderText({}), '');
  });

  it('arrays: index=name (or uuid), index/ for containers, index for scalars', () => {
    assert.equal(renderText([{ name: 'web 1' }, { uuid: 'u-1' }, { other: 1 }, [1], 'x', { name: 7 }]), '0=web+1\n1=u-1\n2/\n3/\n4\n5/\n');
  });

  it('queryEscape matches Go url.QueryEscape', () => {
    assert.equal(queryEscape("a b!'()*~-_.é/"), 'a+b%21%27%28%29%2A~-_.%C3%A9%2F');
  });
});

describe('renderValue / renderError', () => {
  it('YAML needs the library loaded first; text and JSON never do', async () => {
    assert.equal(needsLoading('text'), false);
    assert.equal(needsLoading('json'), false);
    if (needsLoading('yaml')) assert.throws(() => renderValue({}, 'yaml'), /await loadYaml\(\) first/);
    await loadYaml();
    assert.equal(needsLoading('yaml'), false);
  });

  it('JSON and YAML bodies', async () => {
    await loadYaml();
    assert.equal(renderValue({ a: [1, 'x'] }, 'json'), '{"a":[1,"x"]}');
    assert.equal(renderValue(undefined, 'json'), 'null');
    assert.equal(renderValue({ b: 1, a: [1, 'x'] }, 'yaml'), 'a:\n- 1\n- x\nb: 1\n');
    assert.equal(renderValue('10.0.0.1', 'yaml'), '10.0.0.1\n');
  });

  it('errors in rancher-metadata shape', async () => {
    await loadYaml();
    assert.equal(renderError('Not found', 404, 'json'), '{"code":404,"message":"Not found","type":"error"}\n');
    assert.equal(renderError('Not found', 404, 'text'), 'Not found\n');
    assert.equal(renderError('Not found', 404, 'yaml'), 'code: 404\nmessage: Not found\ntype: error\n');
  });
});
