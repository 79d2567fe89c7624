// The pure parts of src/cluster/: names, ip-batch plans, iptables-restore inputs (capture and
// service proxy), DNS files, iptables-save / `ip -o link` parsing, supervisor decisions.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatTag, parseTag, podMac, podNetnsName, podNodeIfName, podSideBatch, podNodeSideBatch, podLinkAddLine, nodeBatch, validateNodes,
} from '../../src/cluster/topology.js';
import { captureMatches, captureRemoveInput, captureRestoreInput } from '../../src/cluster/capture-rules.js';
import { parseIptablesSave } from '../../src/cluster/iptables.js';
import { endpointChainName, serviceChainName, serviceRemoveInput, serviceRestoreInput, serviceRulesFromModel } from '../../src/cluster/service-proxy.js';
import { renderHosts, renderNsswitch, renderResolvConf } from '../../src/cluster/dns.js';
import { parseLinks } from '../../src/cluster/netns.js';
import { backoffDelay, cmdlineMatches, shouldRestart } from '../../src/cluster/supervisor.js';
import { AmbitError } from '../../src/core/errors.js';
import { meshFromYaml, yaml } from '../helpers/config.js';

describe('cluster names', () => {
  test('pod namespaces: readable when short and unambiguous, hashed (with _) otherwise, stable', () => {
    assert.equal(podNetnsName('ambit', 'demo', 'client-0'), 'ambit-demo-client-0');
    const a = podNetnsName('ambit', 'a-b', 'c');
    const b = podNetnsName('ambit', 'a', 'b-c');
    assert.notEqual(a, b, 'a dash in the namespace would make `ambit-a-b-c` ambiguous');
    assert.match(a, /^ambit-a-b-c_[0-9a-f]{10}$/);
    assert.equal(b, 'ambit-a-b-c');
    const long = podNetnsName('ambit', 'averyveryverylongnamespacename', 'a-very-very-very-long-pod-name-0123456789');
    assert.match(long, /^ambit-averyveryverylongnam-a-very-very-very-lon_[0-9a-f]{10}$/);
    assert.ok(long.length <= 64);
    assert.equal(podNetnsName('ambit', 'demo', 'client-0'), podNetnsName('ambit', 'demo', 'client-0'));
  });

  test('interface names fit in 15 characters; MACs derive from the IP', () => {
    const dev = podNodeIfName('some-long-namespace', 'a-very-long-pod-name-with-a-suffix-12345');
    assert.match(dev, /^av[0-9a-f]{12}$/);
    assert.ok(dev.length <= 15);
    assert.equal(podMac('10.244.1.10'), '0a:58:0a:f4:01:0a');
  });

  test('namespace tags round-trip', () => {
    for (const tag of [
      { prefix: 'ambit', kind: 'underlay' as const },
      { prefix: 'at1-cn', kind: 'node' as const, node: 'node-1' },
      { prefix: 'ambit', kind: 'pod' as const, namespace: 'demo', name: 'web.v1-0' },
    ]) {
      assert.deepEqual(parseTag(formatTag(tag)), tag);
    }
    assert.equal(parseTag('something else'), undefined);
    assert.equal(parseTag(undefined), undefined);
  });

  test('plans: the pod link is made from the host directly into both namespaces; routes as Calico', () => {
    const pod = { node: 'node-1', namespace: 'demo', name: 'a', ip: '10.244.1.10' };
    assert.equal(
      podLinkAddLine('ambit', pod),
      `link add ${podNodeIfName('demo', 'a')} netns ambit-node-1 address ee:ee:ee:ee:ee:ee type veth peer name eth0 netns ambit-demo-a address 0a:58:0a:f4:01:0a`,
    );
    assert.deepEqual(podSideBatch('ambit', pod), [
      'link set lo up alias ambit:ambit:pod:demo/a',
      'addr replace 10.244.1.10/32 dev eth0',
      'link set eth0 up',
      'route replace 169.254.1.1/32 dev eth0 scope link',
      'route replace default via 169.254.1.1 dev eth0',
      'neigh replace 169.254.1.1 lladdr ee:ee:ee:ee:ee:ee dev eth0 nud permanent',
    ]);
    const dev = podNodeIfName('demo', 'a');
    assert.deepEqual(podNodeSideBatch(pod), [
      `link set ${dev} up alias ambit-pod:demo/a:10.244.1.10`,
      `route replace 10.244.1.10/32 dev ${dev}`,
      `neigh replace 10.244.1.10 lladdr 0a:58:0a:f4:01:0a dev ${dev} nud permanent`,
    ]);
    const nodes = [
      { name: 'node-1', index: 1, podCidr: '10.244.1.0/24' },
      { name: 'node-2', index: 2, podCidr: '10.244.2.0/24' },
    ];
    assert.deepEqual(nodeBatch('ambit', nodes[0]!, nodes).slice(1), [
      'route replace local 10.96.0.0/16 dev lo',
      'addr replace 172.30.0.11/24 dev ul0',
      'link set ul0 up',
      'route replace 10.244.2.0/24 via 172.30.0.12 dev ul0',
    ]);
  });

  test('node validation', () => {
    const bad: Array<[string, unknown]> = [
      ['no nodes', []],
      ['bad name', [{ name: 'Node_1', index: 1, podCidr: '10.244.1.0/24' }]],
      ['reserved name', [{ name: 'underlay', index: 1, podCidr: '10.244.1.0/24' }]],
      ['bad cidr', [{ name: 'n', index: 1, podCidr: '10.244.1.1/24' }]],
      ['dup index', [{ name: 'a', index: 1, podCidr: '10.244.1.0/24' }, { name: 'b', index: 1, podCidr: '10.244.2.0/24' }]],
    ];
    for (const [what, nodes] of bad) {
      assert.throws(() => validateNodes(nodes as never), (e: AmbitError) => e.code === 'AMBIT_ERR_USAGE', what);
    }
  });
});

describe('capture rules', () => {
  test('the full restore input for a fresh pod', () => {
    assert.equal(
      captureRestoreInput(),
      [
        '*nat',
        ':AMBIT_OUTPUT - [0:0]',
        ':AMBIT_PREROUTING - [0:0]',
        '-A AMBIT_OUTPUT -o lo -j RETURN',
        '-A AMBIT_OUTPUT -d 127.0.0.0/8 -j RETURN',
        '-A AMBIT_OUTPUT -m mark --mark 0x539/0xfff -j RETURN',
        '-A AMBIT_OUTPUT -p udp -m udp --dport 53 -j REDIRECT --to-ports 15053',
        '-A AMBIT_OUTPUT -p tcp -m tcp --dport 53 --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports 15053',
        '-A AMBIT_OUTPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports 15001',
        '-A AMBIT_PREROUTING -p tcp -m tcp --dport 15008 -j RETURN',
        '-A AMBIT_PREROUTING -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports 15006',
        '-I OUTPUT 1 -j AMBIT_OUTPUT',
        '-I PREROUTING 1 -j AMBIT_PREROUTING',
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  test('re-install adds only missing jumps and drops duplicates', () => {
    const input = captureRestoreInput(undefined, { outputJumps: 1, preroutingJumps: 3 });
    assert.doesNotMatch(input, /-I OUTPUT/);
    assert.doesNotMatch(input, /-I PREROUTING/);
    assert.equal((input.match(/-D PREROUTING -j AMBIT_PREROUTING/g) ?? []).length, 2);
  });

  test('remove detaches (jumps only); purge deletes the chains; nothing to do is undefined', () => {
    const installed = parseIptablesSave(
      [
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':AMBIT_OUTPUT - [0:0]',
        ':AMBIT_PREROUTING - [0:0]',
        '-A PREROUTING -j AMBIT_PREROUTING',
        '-A OUTPUT -j AMBIT_OUTPUT',
        '-A AMBIT_OUTPUT -o lo -j RETURN',
        '-A AMBIT_OUTPUT -d 127.0.0.0/8 -j RETURN',
        '-A AMBIT_OUTPUT -m mark --mark 0x539/0xfff -j RETURN',
        '-A AMBIT_OUTPUT -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports 15001',
        '-A AMBIT_PREROUTING -p tcp -m tcp --dport 15008 -j RETURN',
        '-A AMBIT_PREROUTING -p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j REDIRECT --to-ports 15006',
        'COMMIT',
      ].join('\n'),
    );
    assert.equal(captureMatches(installed, { dns: false }), true);
    assert.equal(captureMatches(installed), false, 'DNS capture is on by default and these rules lack it');
    assert.equal(captureMatches(installed, { outbound: 16001, dns: false }), false);
    assert.equal(captureRemoveInput(installed), '*nat\n-D OUTPUT -j AMBIT_OUTPUT\n-D PREROUTING -j AMBIT_PREROUTING\nCOMMIT\n');
    assert.match(captureRemoveInput(installed, { purge: true })!, /-F AMBIT_OUTPUT\n-X AMBIT_OUTPUT\n-F AMBIT_PREROUTING\n-X AMBIT_PREROUTING\n/);
    assert.equal(captureRemoveInput(parseIptablesSave('*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n')), undefined);
  });
});

describe('service proxy rules', () => {
  const svc = { vip: '10.96.0.10', name: 'demo/web', ports: [{ port: 80, endpoints: [{ ip: '10.244.1.10', port: 8080 }, { ip: '10.244.2.10', port: 8080 }, { ip: '10.244.1.11', port: 8080 }] }] };

  test('equal spread: probabilities 1/3, 1/2, then the last; DNAT per endpoint with the hairpin mark', () => {
    const input = serviceRestoreInput([svc]);
    const svcChain = serviceChainName('10.96.0.10', 'TCP', 80);
    assert.ok(svcChain.length <= 28);
    assert.match(input, new RegExp(`-A AMBIT_SERVICES -d 10\\.96\\.0\\.10/32 -p tcp -m tcp --dport 80 -m comment --comment "demo/web:80" -j ${svcChain}`));
    const spread = input.split('\n').filter((l) => l.startsWith(`-A ${svcChain} `));
    assert.deepEqual(spread.map((l) => /--probability (\S+)/.exec(l)?.[1] ?? 'rest'), ['0.33333333333', '0.50000000000', 'rest']);
    const ep = endpointChainName('10.96.0.10', 'TCP', 80, { ip: '10.244.2.10', port: 8080 });
    assert.match(input, new RegExp(`-A ${ep} -s 10\\.244\\.2\\.10/32 -j MARK --set-xmark 0x4000/0x4000`));
    assert.match(input, new RegExp(`-A ${ep} -p tcp -m tcp -j DNAT --to-destination 10\\.244\\.2\\.10:8080`));
    assert.match(input, /-A AMBIT_SERVICES_POST -m mark --mark 0x4000\/0x4000 -j MASQUERADE/);
    // Node-local clients: marked for masquerade unless no service matched.
    assert.match(input, /-A AMBIT_SERVICES_LOCAL -j MARK --set-xmark 0x4000\/0x4000\n-A AMBIT_SERVICES_LOCAL -j AMBIT_SERVICES\n-A AMBIT_SERVICES_LOCAL -j MARK --set-xmark 0x0\/0x4000\n/);
    assert.match(input, /-I PREROUTING 1 -j AMBIT_SERVICES\n-I OUTPUT 1 -j AMBIT_SERVICES_LOCAL\n-I POSTROUTING 1 -j AMBIT_SERVICES_POST\n/);
  });

  test('a port without endpoints has no rule; stale chains are flushed and deleted; present jumps are not re-added', () => {
    const stale = 'AMBIT_SVC_0123456789ABCDEF';
    const current = parseIptablesSave(`*nat\n:PREROUTING ACCEPT [0:0]\n:${stale} - [0:0]\n:AMBIT_SERVICES - [0:0]\n-A PREROUTING -j AMBIT_SERVICES\nCOMMIT\n`);
    const input = serviceRestoreInput([{ vip: '10.96.0.11', ports: [{ port: 80, endpoints: [] }] }], current);
    assert.doesNotMatch(input, /10\.96\.0\.11/);
    assert.match(input, new RegExp(`:${stale} - \\[0:0\\]`));
    assert.match(input, new RegExp(`-X ${stale}\nCOMMIT`));
    assert.doesNotMatch(input, /-I PREROUTING/);
    assert.match(input, /-I OUTPUT 1 -j AMBIT_SERVICES_LOCAL/);
    const removal = serviceRemoveInput(current)!;
    assert.match(removal, /^\*nat\n-D PREROUTING -j AMBIT_SERVICES\n/);
    assert.match(removal, new RegExp(`-F ${stale}`));
    assert.match(removal, new RegExp(`-X ${stale}`));
    assert.match(removal, /-X AMBIT_SERVICES\n/);
    assert.equal(serviceRemoveInput(parseIptablesSave('')), undefined);
  });

  test('invalid input is a usage error', () => {
    assert.throws(() => serviceRestoreInput([{ vip: 'web', ports: [] }]), (e: AmbitError) => e.code === 'AMBIT_ERR_USAGE');
    assert.throws(() => serviceRestoreInput([{ ...svc }, { ...svc }]), /listed twice/);
    assert.throws(() => serviceRestoreInput([{ vip: '10.96.0.1', ports: [{ port: 0, endpoints: [] }] }]), /port 0/);
  });

  test('from the mesh model: VIP, service port, and each pod\'s resolved target port', () => {
    const { model } = meshFromYaml(yaml`
      apiVersion: v1
      kind: Namespace
      metadata: {name: demo}
      ---
      apiVersion: v1
      kind: Pod
      metadata: {name: web-0, namespace: demo, labels: {app: web}}
      spec: {nodeName: node-1, containers: [{name: c, command: [sleep, "1"], ports: [{name: http, containerPort: 8080}]}]}
      status: {podIP: 10.244.1.10}
      ---
      apiVersion: v1
      kind: Service
      metadata: {name: web, namespace: demo}
      spec: {selector: {app: web}, clusterIP: 10.96.0.50, ports: [{name: http, port: 80, targetPort: http}]}
    `);
    assert.ok(model);
    assert.deepEqual(serviceRulesFromModel(model), [{ vip: '10.96.0.50', name: 'demo/web', ports: [{ port: 80, endpoints: [{ ip: '10.244.1.10', port: 8080 }] }] }]);
  });
});

describe('DNS files', () => {
  const base = { prefix: 'ambit', netns: 'ambit-demo-a', namespace: 'demo', name: 'a', ip: '10.244.1.10' };

  test('hosts: short names only for the own namespace, services win over pods, localhost and the pod itself', () => {
    const text = renderHosts({
      ...base,
      services: [
        { namespace: 'demo', name: 'web', vip: '10.96.0.10' },
        { namespace: 'other', name: 'api', vip: '10.96.0.11' },
      ],
      pods: [
        { namespace: 'demo', name: 'web', ip: '10.244.1.99' }, // clashes with service web.demo
        { namespace: 'other', name: 'x-0', ip: '10.244.2.5' },
      ],
    });
    assert.equal(
      text,
      [
        '# Ambit cluster ambit: hosts of pod demo/a (network namespace ambit-demo-a); rewritten in place on every change',
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        '10.96.0.10\tweb web.demo web.demo.svc web.demo.svc.cluster.local',
        '10.96.0.11\tapi.other api.other.svc api.other.svc.cluster.local',
        '10.244.1.10\ta a.demo',
        '10.244.2.5\tx-0.other',
        '',
      ].join('\n'),
    );
  });

  test('resolv.conf: Kubernetes search path, ndots:5, a nameserver that refuses at once', () => {
    assert.equal(
      renderResolvConf({ prefix: 'ambit', namespace: 'demo', name: 'a', clusterDomain: 'example.internal' }).split('\n').slice(1).join('\n'),
      'nameserver 127.0.0.1\nsearch demo.svc.example.internal svc.example.internal example.internal\noptions ndots:5 timeout:1 attempts:1\n',
    );
  });

  test('nsswitch.conf: the host\'s with hosts: files dns', () => {
    assert.equal(renderNsswitch('passwd: files systemd\nhosts: files mdns4_minimal [NOTFOUND=return] resolve dns myhostname\n'), 'passwd: files systemd\nhosts:          files dns\n');
    assert.equal(renderNsswitch('passwd: files'), 'passwd: files\nhosts:          files dns\n');
  });
});

describe('parsers', () => {
  test('`ip -o link` output: names without @peer, up/carrier, alias, MAC', () => {
    const out = [
      '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00\\    alias ambit:ambit:node:node-1',
      '2: ul0@if3: <NO-CARRIER,BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state DOWN mode DEFAULT group default qlen 1000\\    link/ether 36:59:6a:e9:d9:ee brd ff:ff:ff:ff:ff:ff link-netns x',
      '3: av0123456789ab@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether ee:ee:ee:ee:ee:ee brd ff:ff:ff:ff:ff:ff link-netns y\\    alias ambit-pod:demo/a:10.244.1.10',
    ].join('\n');
    assert.deepEqual(parseLinks(out), [
      { name: 'lo', up: true, carrier: true, alias: 'ambit:ambit:node:node-1', mac: undefined },
      { name: 'ul0', up: false, carrier: false, alias: undefined, mac: '36:59:6a:e9:d9:ee' },
      { name: 'av0123456789ab', up: true, carrier: true, alias: 'ambit-pod:demo/a:10.244.1.10', mac: 'ee:ee:ee:ee:ee:ee' },
    ]);
  });
});

describe('supervisor decisions', () => {
  test('backoff doubles from initialMs up to maxMs', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6].map((n) => backoffDelay({ initialMs: 100, maxMs: 1000 }, n)), [100, 200, 400, 800, 1000, 1000]);
    assert.equal(backoffDelay(undefined, 1), 200);
  });

  test('restart policies', () => {
    assert.equal(shouldRestart('always', 0, null), true);
    assert.equal(shouldRestart('on-failure', 0, null), false);
    assert.equal(shouldRestart('on-failure', 1, null), true);
    assert.equal(shouldRestart('on-failure', null, 'SIGSEGV'), true);
    assert.equal(shouldRestart('never', 1, null), false);
  });

  test('command line matching: exact, behind an interpreter, or still `ip netns exec`', () => {
    const argv = ['./server.js', '--port', '80'];
    assert.equal(cmdlineMatches(argv, argv), true);
    assert.equal(cmdlineMatches(['node', './server.js', '--port', '80'], argv), true);
    assert.equal(cmdlineMatches(['ip', 'netns', 'exec', 'ambit-demo-a', ...argv], argv, 'ambit-demo-a'), true);
    assert.equal(cmdlineMatches(['ip', 'netns', 'exec', 'other', ...argv], argv, 'ambit-demo-a'), false);
    assert.equal(cmdlineMatches(['./server.js', '--port', '81'], argv), false);
    assert.equal(cmdlineMatches(['bash'], argv), false);
  });
});
