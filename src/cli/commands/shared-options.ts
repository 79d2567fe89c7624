// Options several commands share.
import type { BuildOptions } from '../../model/build-model.js';
import { AmbitError } from '../../core/errors.js';

export const clusterOptions = {
  nodes: { type: 'string' as const },
  'trust-domain': { type: 'string' as const },
  'root-namespace': { type: 'string' as const },
};

export function buildOptionsFrom(values: { nodes?: string; 'trust-domain'?: string; 'root-namespace'?: string }): BuildOptions {
  const n = values.nodes === undefined ? 2 : Number(values.nodes);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new AmbitError('AMBIT_ERR_USAGE', `--nodes must be a whole number from 1 to 64, not "${values.nodes}"`);
  }
  return {
    nodes: Array.from({ length: n }, (_, i) => `node-${i + 1}`),
    settings: {
      ...(values['trust-domain'] ? { trustDomain: values['trust-domain'] } : {}),
      ...(values['root-namespace'] ? { rootNamespace: values['root-namespace'] } : {}),
    },
  };
}
