// The in-pod capture rules belong to the node agent (src/nodeagent/capture-rules.ts); the
// cluster still installs them itself for sidecar-mode pods.
export * from '../nodeagent/capture-rules.js';
