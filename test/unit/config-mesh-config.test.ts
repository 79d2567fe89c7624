// Istio's mesh config ConfigMap: validated inside `data.mesh` with the file's line numbers,
// applied from the root namespace only, Ambit's defaults where unset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { meshFromYaml, validateYaml as validateSet, yaml } from '../helpers/config.js';
import { DEFAULT_MESH_CONFIG, meshConfigOf, parseMeshConfig } from '../../src/config/mesh-config.js';

const validateYaml = (text: string) => validateSet(text).diagnostics;
const loadMeshText = (text: string) => meshFromYaml(text);

const meshConfigMap = (mesh: string, namespace = 'istio-system') => yaml`
  apiVersion: v1
  kind: ConfigMap
  metadata: {name: istio, namespace: ${namespace}}
  data:
    mesh: |
${mesh.split('\n').map((l) => `      ${l}`).join('\n')}
`;

test('defaults: MERGE_SLASHES (stricter than Istio\'s BASE) and ALLOW_ANY', () => {
  assert.deepEqual(DEFAULT_MESH_CONFIG, { pathNormalization: 'MERGE_SLASHES', outboundTrafficPolicy: 'ALLOW_ANY' });
  assert.deepEqual(parseMeshConfig('').config, DEFAULT_MESH_CONFIG);
});

test('the applied fields are read; Istio fields Ambit ignores are warnings; weak normalization is a warning', () => {
  const r = parseMeshConfig('accessLogFile: /dev/stdout\npathNormalization:\n  normalization: BASE\noutboundTrafficPolicy:\n  mode: REGISTRY_ONLY\n');
  assert.deepEqual(r.config, { pathNormalization: 'BASE', outboundTrafficPolicy: 'REGISTRY_ONLY' });
  assert.deepEqual(r.issues.map((i) => [i.severity, i.code, i.line]), [['warning', 'ignored-field', 1], ['warning', 'weak-normalization', 3]]);
});

test('errors in data.mesh point at the file\'s line and the path inside MeshConfig', () => {
  const text = meshConfigMap('defaultConfig: {}\npathNormalization:\n  normalization: MERGE_SLASH\noutboundTrafficPolicy:\n  mod: REGISTRY_ONLY\nnotAField: 1');
  const ds = validateYaml(text).filter((d) => d.severity === 'error');
  const at = ds.map((d) => [d.code, d.line, d.path]);
  assert.deepEqual(at, [
    ['bad-value', 8, 'data.mesh.pathNormalization.normalization'],
    ['unknown-field', 10, 'data.mesh.outboundTrafficPolicy.mod'],
    ['unknown-field', 11, 'data.mesh.notAField'],
  ]);
  assert.match(ds[0]!.message, /did you mean "MERGE_SLASHES"/);
});

test('broken YAML inside data.mesh is a syntax error on its line; other ConfigMaps are opaque', () => {
  const ds = validateYaml(meshConfigMap('pathNormalization:\n  normalization: [BASE\n'));
  assert.equal(ds.filter((d) => d.code === 'syntax').length >= 1, true, JSON.stringify(ds));
  assert.ok(ds.every((d) => d.line >= 6), JSON.stringify(ds));
  assert.deepEqual(validateYaml(yaml`
    apiVersion: v1
    kind: ConfigMap
    metadata: {name: app-settings, namespace: shop}
    data: {mesh: "not: [yaml", other: x}
  `), []);
});

test('only the root namespace\'s istio ConfigMap applies; another is reported and ignored', () => {
  const cms = [
    { metadata: { name: 'istio', namespace: 'shop' }, data: { mesh: 'pathNormalization: {normalization: NONE}' } },
    { metadata: { name: 'istio', namespace: 'istio-system' }, data: { mesh: 'pathNormalization: {normalization: DECODE_AND_MERGE_SLASHES}' } },
  ];
  assert.equal(meshConfigOf(cms, 'istio-system').pathNormalization, 'DECODE_AND_MERGE_SLASHES');
  assert.equal(meshConfigOf(cms, 'other-root').pathNormalization, 'MERGE_SLASHES');
  const check = loadMeshText(meshConfigMap('pathNormalization: {normalization: NONE}', 'shop'));
  assert.equal(check.model?.meshConfig.pathNormalization, 'MERGE_SLASHES');
  assert.ok(check.diagnostics.some((d) => d.code === 'ignored' && /root namespace/.test(d.message)), JSON.stringify(check.diagnostics));
  assert.equal(loadMeshText(meshConfigMap('pathNormalization: {normalization: NONE}')).model?.meshConfig.pathNormalization, 'NONE');
});
