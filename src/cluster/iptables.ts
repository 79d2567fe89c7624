// Reading and changing a namespace's iptables tables lives with the node agent
// (src/nodeagent/iptables.ts); the cluster's service proxy and source routing use it too.
export * from '../nodeagent/iptables.js';
