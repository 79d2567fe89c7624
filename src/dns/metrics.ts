// The DNS proxy's metrics, with Istio ztunnel's names and labels (its dns/metrics.rs:
// dns_requests, dns_upstream_requests, dns_upstream_failures, dns_upstream_request_duration
// under the `istio_` prefix, labels request_query_type, request_protocol,
// source_canonical_service, source_canonical_revision), plus Ambit's count of what the proxy
// refused or dropped before answering (malformed or oversized messages, limits), by reason.
import type { MetricsRegistry } from '../telemetry/metrics.js';

const LABELS = ['request_query_type', 'request_protocol', 'source_canonical_service', 'source_canonical_revision'] as const;
export type DnsLabels = Record<(typeof LABELS)[number], string>;

export class DnsMetrics {
  readonly requests;
  readonly upstreamRequests;
  readonly upstreamFailures;
  readonly upstreamDuration;
  readonly refused;

  constructor(registry: MetricsRegistry) {
    this.requests = registry.counter({ name: 'istio_dns_requests_total', help: 'Total number of DNS requests (unstable)', labelNames: LABELS });
    this.upstreamRequests = registry.counter({ name: 'istio_dns_upstream_requests_total', help: 'Total number of DNS requests forwarded to upstream (unstable)', labelNames: LABELS });
    this.upstreamFailures = registry.counter({ name: 'istio_dns_upstream_failures_total', help: 'Total number of DNS requests that failed to forward upstream (unstable)', labelNames: LABELS });
    this.upstreamDuration = registry.histogram({
      name: 'istio_dns_upstream_request_duration_seconds', help: 'Total time in seconds Istio takes to get DNS response from upstream (unstable)',
      labelNames: LABELS, buckets: [0.001, 0.005, 0.01, 0.1, 1, 5],
    });
    this.refused = registry.counter({ name: 'ambit_dns_refused_total', help: 'DNS messages the proxy refused or dropped before answering, by reason.', labelNames: ['reason', 'request_protocol'] });
  }
}

export function dnsLabels(type: string, protocol: 'udp' | 'tcp', source: { canonicalName?: string; canonicalRevision?: string } | undefined): DnsLabels {
  return {
    request_query_type: type.toLowerCase(),
    request_protocol: protocol,
    source_canonical_service: source?.canonicalName || 'unknown',
    source_canonical_revision: source?.canonicalRevision || 'unknown',
  };
}
