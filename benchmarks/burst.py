#!/usr/bin/env python3
"""A burst of concurrent full-graph creates: multilb (``fake`` backend, 8
clusters, two provider agents) against a stub provider on the same stack
(issue 14, P3).

A benchmark script, not a test: it prints figures and asserts nothing about
times.  Run it from the repository root with the Python of the venv that has
Octavia and multilb installed, through the shared lock::

    flock /tmp/multilb-functional.lock nice -n 5 .tox/py3/bin/python \\
        benchmarks/burst.py --count 200
    flock /tmp/multilb-functional.lock nice -n 5 .tox/py3/bin/python \\
        benchmarks/burst.py --count 200 --capacity 25

What runs (one stack, tools/localstack): etcd (multilb's store and
coordination), MariaDB, **two Octavia API processes** (``api_count=2``;
wsgiref, one process each, on two ports) and **two octavia-driver-agent
processes**, each with its own three sockets and each running one multilb
provider agent (``OctaviaStack.start_extra_driver_agent``, as on two Octavia
hosts).  The two multilb agents join the same tooz group in etcd and split
the 8 clusters over their hash ring (``multilb/agent.py``); the script waits
until every cluster has an owner and the split has been stable for 3 s and
prints it.  (tools/localstack can also run one driver agent with two
provider-agent processes, by naming two agents in ``enabled_provider_agents``;
two driver agents is what two hosts run and also doubles the driver agent's
forking socket servers.)  Providers: ``multilb,floor_stub``; multilb with
``multilb_conf`` of ``tests/functional/fleet.py`` (its ``poll_interval``
left at multilb's default unless ``--poll-interval``).

The stub and the call tracer are those of ``benchmarks/latency_floor.py``
(imported, not copied): ``floor_stub`` does, after the API's commit, one
``get_loadbalancer`` and one ``update_loadbalancer_status`` per load
balancer, from a thread of the API process -- here ``--stub-threads``
threads per API process (``LATENCY_FLOOR_STUB_THREADS``), so that the stub
is not serialised behind one thread; multilb's provider agents run through
the ``multilb_traced`` entry point, which records every ``DriverLibrary``
call in ``calls.jsonl``.  Each multilb agent talks to its own driver agent;
the stub's threads alternate between the two driver agents' sockets
(``LATENCY_FLOOR_SOCKET_DIRS``; ``--stub-driver-agents 1``: only the first,
the API processes' own ``[driver_agent]`` sockets).

Each burst: ``--count`` POSTs of the same full graph (LB + listener HTTP:80
+ pool ROUND_ROBIN + 3 members + HTTP health monitor), fired at once from a
pool of ``--clients`` threads (plain urllib, alternating between the two API
processes; 12 by default: each API process is a wsgiref server that serves
one request at a time and queues 5, and a connection beyond that is reset
before its request is read -- sent again, counted). From the first POST's
start, one list GET ``/v2/lbaas/loadbalancers?provider=<p>`` every
``--poll`` s (not 200 GETs) until every created load balancer is ACTIVE or
ERROR. The stub's burst comes first, then multilb's (``--order``), each
after ``--pause`` s; before them, ``--warmup`` creates per provider, not
measured (the first request of each API process loads the provider),
multilb's deleted again so that they take no capacity; no other load
balancer is deleted. Figures: time from the first POST to all ACTIVE (seen
by the list poll, and "written": the last ACTIVE status call returned, from
the call record), ERRORs, refused POSTs, DriverLibrary calls per load
balancer by kind, the ratio multilb / stub, the load average at start and
end; after multilb's burst the load balancers per cluster from
``multilb-manage cluster list/show`` and the fake appliance's files, against
``max_loadbalancers`` (over-commit); and multilb's status update calls
(count per LB, duration p50/p99) -- what batching several LBs into one
status call could save.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import sys
import time
import types
import urllib.error

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (REPO, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import create_to_active as base  # noqa: E402
import latency_floor as floor  # noqa: E402
from multilb import fencing  # noqa: E402
from multilb import store  # noqa: E402
from tests.functional.fleet import VIP_SUBNET, multilb_conf  # noqa: E402
from tests.functional.helpers import manage_json  # noqa: E402
from tools.localstack import (  # noqa: E402
    EtcdServer, MariaDBServer, OctaviaStack)

MULTILB, STUB, AGENT = floor.MULTILB, floor.STUB, floor.AGENT
LB_PATH, PROJECT = floor.LB_PATH, floor.PROJECT
THREADS_ENV = 'LATENCY_FLOOR_STUB_THREADS'
SOCKETS_ENV = 'LATENCY_FLOOR_SOCKET_DIRS'
# octavia-api under tools/localstack is wsgiref's simple_server: one request
# at a time per process, a listen backlog of 5.  A connection beyond it is
# reset before the request is read: sent again (counted), never lost.
RETRIES = 20


def _reset(exc):
    """Whether ``exc`` is a connection refused or reset by the server."""
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason
    return isinstance(exc, (ConnectionError, http.client.RemoteDisconnected))


# --------------------------------------------------------------------------
# The burst
# --------------------------------------------------------------------------

def send(client, method, path, data=None):
    """``client.request`` sent again after a connection reset;
    (status, body, resets)."""
    for attempt in range(RETRIES):
        try:
            return client.request(method, path, data) + (attempt,)
        except (OSError, http.client.HTTPException) as exc:
            if attempt == RETRIES - 1 or not _reset(exc):
                raise
            time.sleep(0.05 * (attempt + 1))


def post(client, name, provider):
    """POST one full graph; (name, lb_id or None, t0, t1, error,
    resets)."""
    data = json.dumps({'loadbalancer': {
        'name': name, 'project_id': PROJECT, 'vip_subnet_id': VIP_SUBNET,
        'provider': provider, 'listeners': floor.GRAPH}}).encode()
    t0 = time.perf_counter()
    try:
        status, body, resets = send(client, 'POST', LB_PATH, data)
    except Exception as exc:  # noqa: B902 - counted, not fatal
        return name, None, t0, time.perf_counter(), repr(exc), RETRIES
    t1 = time.perf_counter()
    if status not in (201, 202):
        return (name, None, t0, t1, 'HTTP %s %s' % (status, str(body)[:200]),
                resets)
    return name, body['loadbalancer']['id'], t0, t1, None, resets


def list_statuses(client, provider):
    """({name: provisioning_status} of every LB of ``provider``, how many
    names are listed twice): one GET."""
    status, body, _resets = send(
        client, 'GET', '%s?provider=%s&fields=name&fields=provisioning_status'
        '&limit=2000' % (LB_PATH, provider))
    if status != 200:
        raise base.BenchError('list GET: HTTP %s %s' % (status, body))
    found = {lb['name']: lb['provisioning_status']
             for lb in body['loadbalancers']}
    return found, len(body['loadbalancers']) - len(found)


def burst(args, urls, provider, out, count=None, prefix='burst'):
    """Fire ``count`` (default ``args.count``) creates at once; poll with
    one list GET per ``args.poll`` s until each is ACTIVE or ERROR (or
    ``args.timeout``)."""
    count = args.count if count is None else count
    names = ['%s-%s-%03d' % (prefix, provider, i) for i in range(count)]
    wanted_names = set(names)
    clients = [base.Client(url, timeout=300) for url in urls]
    poller = base.Client(urls[0], timeout=300)
    load_start = base.loadavg()
    out('%s %s: %d creates from %d client threads over %d API '
        'processes; load avg %s' % (provider, prefix, count, args.clients,
                                    len(urls), load_start))
    seen, polls = {}, []
    t_first = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
        futures = [pool.submit(post, clients[i % len(clients)], name,
                               provider) for i, name in enumerate(names)]
        posts = None
        done_at = None
        tick = t_first
        while True:
            if posts is None and all(f.done() for f in futures):
                posts = [f.result() for f in futures]
            t0 = time.perf_counter()
            state, twice = list_statuses(poller, provider)
            now = time.perf_counter()
            polls.append(now - t0)
            for name, status in state.items():
                if (status in ('ACTIVE', 'ERROR') and name not in seen and
                        name in wanted_names):
                    seen[name] = (status, now)
            if posts is not None:
                wanted = {p[0] for p in posts if p[1]}
                if wanted <= set(seen):
                    done_at = now
                    break
            if now - t_first > args.timeout:
                break
            tick += args.poll
            while tick <= now:
                tick += args.poll
            time.sleep(tick - now)
    if posts is None:
        posts = [f.result() for f in futures]
    return {'provider': provider, 'posts': posts, 'seen': seen,
            't_first': t_first, 'done_at': done_at, 'polls': polls,
            'twice': twice,
            'load': (load_start, base.loadavg())}


# --------------------------------------------------------------------------
# The stack
# --------------------------------------------------------------------------

def agent_pid(member_id):
    """The process id in an agent's member id (host-pid-random)."""
    try:
        return int(member_id.rsplit('-', 2)[1])
    except (IndexError, ValueError):
        return None


def wait_for_split(kv, clusters, pids, quiet=3.0, timeout=90.0):
    """Wait until every cluster is owned by one of ``pids`` and the
    owners have not changed for ``quiet`` s; {cluster: pid}."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while True:
        owners = {c: agent_pid((fencing.owners(kv).get(c) or {})
                               .get('agent', '')) for c in clusters}
        if owners != last:
            last, since = owners, time.monotonic()
        elif (all(p in pids for p in owners.values()) and
              time.monotonic() - since >= quiet):
            return owners
        if time.monotonic() > deadline:
            return owners
        time.sleep(0.2)


def placement(stack, workdir, clusters):
    """{cluster: (placed counter, LBs in cluster show, files on the fake
    appliance, max_loadbalancers)}."""
    fleet = types.SimpleNamespace(octavia=stack)
    rows = {r['name']: r for r in manage_json(fleet, 'cluster', 'list',
                                              code=(0, 3))}
    found = {}
    for name in clusters:
        shown = manage_json(fleet, 'cluster', 'show', name, code=(0, 3))
        root = os.path.join(workdir, 'appliance', name)
        files = (len([f for f in os.listdir(root) if f.endswith('.json')])
                 if os.path.isdir(root) else 0)
        row = rows.get(name, {})
        found[name] = (row.get('placed'), len(shown.get('loadbalancers', [])),
                       files, row.get('max_loadbalancers'))
    return found


def warm_up(args, stack, out):
    """``args.warmup`` creates per provider (not measured: the first
    requests of each API process load the provider); multilb's are
    deleted again so that they take no capacity."""
    for provider in args.order:
        warm = burst(args, stack.api_urls, provider, out,
                     count=args.warmup, prefix='warm')
        if len(warm['seen']) < args.warmup:
            raise base.BenchError('warm-up of %s: %d of %d done: %s' % (
                provider, len(warm['seen']), args.warmup,
                [p[4] for p in warm['posts'] if p[4]]))
        if provider == MULTILB:
            client = base.Client(stack.api_url)
            for lb_id in [p[1] for p in warm['posts'] if p[1]]:
                base.delete_and_wait(client, lb_id, 0.2, args.timeout)


def run(args, workdir, out):
    poll_interval = (floor.default_poll_interval()
                     if args.poll_interval is None else args.poll_interval)
    trace = os.path.join(workdir, 'calls.jsonl')
    os.environ['PYTHONPATH'] = os.pathsep.join(
        [floor.write_stub_package(workdir)] +
        [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
    os.environ[floor.TRACE_ENV] = trace
    os.environ[THREADS_ENV] = str(args.stub_threads)
    clusters = {'bench%d' % i: args.capacity for i in range(args.clusters)}
    etcd = db = stack = None
    res = {'poll_interval': poll_interval, 'clusters': clusters,
           'load_start': base.loadavg()}
    out('load avg at start: %s' % res['load_start'])
    try:
        out('starting etcd, MariaDB, 2 Octavia APIs + 2 driver agents in '
            '%s ...' % workdir)
        t = time.perf_counter()
        etcd = EtcdServer(workdir).start()
        db = MariaDBServer(workdir).start()
        url = db.create_database('octavia', 'octavia', 'octavia')
        store_url = etcd.store_url + '?prefix=/multilb/'
        conf = multilb_conf(
            workdir, store_url, clusters, poll_interval=poll_interval,
            coordination_url=etcd.store_url + '?timeout=5&lock_timeout=6'
                                              '&membership_timeout=6')
        stack = OctaviaStack(workdir, url, provider='%s,%s' % (MULTILB, STUB),
                             provider_agents=(AGENT,), extra_conf=conf,
                             api_count=args.api_count)
        # The stub's threads alternate between the sockets of the driver
        # agents (the second one's are run/agent1/, see
        # start_extra_driver_agent), as multilb's two agents use one each.
        # The stub opens them when the first request loads it (the
        # warm-up), after the second driver agent is up.
        dirs = [stack.run_dir, os.path.join(stack.run_dir, 'agent1')]
        os.environ[SOCKETS_ENV] = os.pathsep.join(
            dirs[:args.stub_driver_agents])
        stack.start()
        second = stack.start_extra_driver_agent()
        pids = (stack.provider_agent_pids(AGENT) +
                stack.provider_agent_pids(AGENT, second))
        owners = wait_for_split(store.get_kv_store(store_url), clusters,
                                pids)
        res['split'] = {pid: sorted(c for c, p in owners.items() if p == pid)
                        for pid in pids}
        res['unowned'] = sorted(c for c, p in owners.items() if p not in pids)
        out('stack ready in %.1fs: %s; multilb agents (pid: clusters) %s' % (
            time.perf_counter() - t, ', '.join(stack.api_urls),
            '; '.join('%s: %s' % (p, ' '.join(c))
                      for p, c in res['split'].items())))
        wall = time.time() - time.perf_counter()
        res['wall'] = wall
        if args.warmup:
            warm_up(args, stack, out)
        res['bursts'] = {}
        for provider in args.order:
            time.sleep(args.pause)
            res['bursts'][provider] = burst(args, stack.api_urls, provider,
                                            out)
            if provider == MULTILB:
                res['placement'] = placement(stack, workdir, clusters)
        time.sleep(1.0)   # the last call records are written on return
        res['calls'] = floor.read_trace(trace)
        res['load_end'] = base.loadavg()
        return res
    finally:
        base.stop_all([stack, db, etcd], out)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def analyse(res, b):
    """Figures of one burst ``b`` (in place)."""
    wall = res['wall']
    ok = [p for p in b['posts'] if p[1]]
    ids = {p[1] for p in ok}
    start = b['t_first'] + wall
    end_seen = (b['done_at'] or time.perf_counter()) + wall
    errors = sorted(n for n, (s, _t) in b['seen'].items() if s == 'ERROR')
    by_id = {p[1]: p for p in ok}
    # Calls naming one of this burst's LBs, and every call of the burst's
    # provider while the burst ran.
    who = 'multilb' if b['provider'] == MULTILB else 'stub'
    mine = [c for c in res['calls'] if c.get('id') in ids]
    during = [c for c in res['calls'] if c.get('who') == who and
              start <= c['t0'] <= end_seen]
    active = {}
    for c in mine:
        if (c.get('kind') == 'status' and c.get('lb_status') == 'ACTIVE'
                and not c.get('error')):
            active.setdefault(c['id'], c)
    written = [c['t1'] - start for c in active.values()]
    seen = {n: t - b['t_first'] for n, (s, t) in b['seen'].items()
            if s == 'ACTIVE'}
    kinds = {}
    for c in mine:
        kinds[_kind(c)] = kinds.get(_kind(c), 0) + 1
    background = {}
    for c in during:
        if c.get('id') not in ids:
            background[_kind(c)] = background.get(_kind(c), 0) + 1
    statuses = [c for c in mine if c['kind'] == 'status' and
                c.get('lb_status') == 'ACTIVE']
    every_status = [c for c in during if c['kind'] == 'status']
    b.update(
        n_ok=len(ok), n_refused=len(b['posts']) - len(ok),
        refused=[p[4] for p in b['posts'] if not p[1]][:3],
        errors=errors, n_active=len(seen),
        all_seen=(b['done_at'] - b['t_first']) if b['done_at'] else None,
        all_written=(max(written) if len(written) == len(ok) and written
                     else None),
        posts_done=max(p[3] for p in b['posts']) - b['t_first'],
        post_times=[p[3] - p[2] for p in b['posts']],
        seen_times=list(seen.values()), written_times=written,
        kinds=kinds, background=background,
        status_calls=[c['t1'] - c['t0'] for c in statuses],
        all_status_calls=[c['t1'] - c['t0'] for c in every_status],
        all_status_objects=[c.get('objects', 0) for c in every_status],
        span=end_seen - start, n_during=len(during),
        status_lbs=[c.get('lbs', 1) for c in statuses],
        get_calls=[c['t1'] - c['t0'] for c in mine if c['kind'] == 'get'],
        status_pids=sorted({c['pid'] for c in statuses}),
        first_get=[min(c['t0'] for c in mine if c['id'] == i and
                       c['kind'] == 'get') - (by_id[i][2] + wall)
                   for i in ids if any(c['id'] == i and c['kind'] == 'get'
                                       for c in mine)])
    return b


def _kind(call):
    """A call's kind as printed: get (found nothing), status ACTIVE /
    DELETED / operating only (no provisioning status of a load
    balancer)."""
    if call['kind'] == 'get':
        return 'get' if call.get('found') else 'get (found nothing)'
    if call['kind'] == 'status':
        return 'status %s' % (call.get('lb_status') or 'operating-only')
    return call['kind']


def _fmt(value):
    return '%.2f s' % value if value is not None else 'not reached'


def _row(label, values):
    if not values:
        return '%-44s    0  (n/a)' % label
    return base.row(label, values)


def _header(args, res, out):
    out('')
    out('=' * 78)
    out('burst: %d concurrent full-graph creates, multilb vs stub provider '
        '(issue 14, P3)' % args.count)
    out('=' * 78)
    for line in base.machine_info():
        out(line)
    out('load avg:  %s (start)  ->  %s (end)' % (
        res['load_start'], res['load_end']))
    out('octavia:   %s, %d API processes (wsgiref), 2 driver agents (one '
        'multilb agent each)' % (base.octavia_version(), args.api_count))
    out('multilb:   fake backend, %d clusters x max_loadbalancers %d, '
        'etcd store+coordination, poll_interval %gs%s' % (
            args.clusters, args.capacity, res['poll_interval'],
            ' (default)' if args.poll_interval is None else ''))
    out('           clusters per agent: %s%s' % (
        '; '.join('pid %s: %d' % (p, len(c))
                  for p, c in res['split'].items()),
        '; NOT OWNED: %s' % ' '.join(res['unowned'])
        if res['unowned'] else ''))
    out('stub:      after commit 1 get_loadbalancer + 1 status update, %d '
        'threads per API process over %d driver agent(s)' % (
            args.stub_threads, args.stub_driver_agents))
    out('client:    %d threads, POSTs alternate the API processes; one '
        'list GET per %gs' % (args.clients, args.poll))
    out('order:     %s (pause %gs before each); warm-up %d creates per '
        'provider first (multilb\'s deleted)' % (
            ', '.join(args.order), args.pause, args.warmup))


def _totals(args, bursts, out):
    out('')
    out('%-44s %s' % ('', '  '.join('%16s' % p for p in args.order)))
    lines = [
        ('load avg at burst start', lambda b: b['load'][0]),
        ('load avg at burst end', lambda b: b['load'][1]),
        ('POSTs accepted / refused', lambda b: '%d / %d' % (
            b['n_ok'], b['n_refused'])),
        ('POSTs sent again after a reset (count)', lambda b: '%d (%d)' % (
            sum(1 for p in b['posts'] if p[5]),
            sum(p[5] for p in b['posts']))),
        ('names listed twice (a POST done twice)', lambda b: b['twice']),
        ('ACTIVE / ERROR', lambda b: '%d / %d' % (b['n_active'],
                                                  len(b['errors']))),
        ('first POST -> last POST answered', lambda b: _fmt(
            b['posts_done'])),
        ('first POST -> all ACTIVE seen (list poll)', lambda b: _fmt(
            b['all_seen'])),
        ('first POST -> last ACTIVE written (calls)', lambda b: _fmt(
            b['all_written'])),
        ('its DriverLibrary calls until all seen', lambda b: '%d (%.1f/s)' % (
            b['n_during'], b['n_during'] / max(b['span'], 1e-9))),
    ]
    for label, get in lines:
        out('%-44s %s' % (label, '  '.join('%16s' % get(bursts[p])
                                           for p in args.order)))
    m, s = bursts.get(MULTILB), bursts.get(STUB)
    if m and s:
        out('')
        out('ratio multilb / stub (issue 14 target: <= 1.3):')
        for label, key in (('all ACTIVE seen    ', 'all_seen'),
                           ('last ACTIVE written', 'all_written')):
            if m[key] and s[key]:
                out('  %s  %.2f  (%+.2f s)' % (label, m[key] / s[key],
                                               m[key] - s[key]))
            else:
                out('  %s  n/a' % label)
    for p in args.order:
        b = bursts[p]
        if b['refused']:
            out('%s refused POSTs, first ones: %s' % (p, b['refused']))
        if b['errors']:
            out('%s ERROR: %s' % (p, ', '.join(b['errors'][:10])))


def _per_lb(args, bursts, out):
    out('')
    out('per load balancer (ms, from the first POST of its burst unless '
        'said):')
    out('%-44s %4s %9s %9s %9s %9s %9s' % (
        '', 'n', 'p50', 'p99', 'min', 'max', 'mean'))
    for p in args.order:
        b = bursts[p]
        tag = '%-7s' % ('stub' if p == STUB else p)
        out(_row('%s POST round trip (own)' % tag, b['post_times']))
        out(_row('%s ACTIVE seen' % tag, b['seen_times']))
        out(_row('%s ACTIVE written' % tag, b['written_times']))
        out(_row('%s own POST start -> first get sent' % tag,
                 b['first_get']))
        out(_row('%s get_loadbalancer call' % tag, b['get_calls']))
        out(_row('%s update_loadbalancer_status call' % tag,
                 b['status_calls']))


def _calls(args, bursts, out):
    pct = base.percentile
    out('')
    out('DriverLibrary calls naming a load balancer of the burst, per load '
        'balancer:')
    for p in args.order:
        b = bursts[p]
        n = max(b['n_ok'], 1)
        out('  %-8s %s  (all: %.2f)' % (p, ', '.join(
            '%s %.2f' % (k, v / n) for k, v in sorted(b['kinds'].items())),
            sum(b['kinds'].values()) / n))
        if b['background']:
            out('  %-8s other calls of its processes while the burst ran: '
                '%s' % ('', ', '.join('%s %d' % kv for kv in
                                      sorted(b['background'].items()))))
    m = bursts.get(MULTILB)
    if not m:
        return
    out('')
    out('multilb status updates (the batching question):')
    out('  setting an LB ACTIVE: %d calls for %d LBs; LBs per call: %s; '
        'from %d agent processes' % (
            len(m['status_calls']), m['n_ok'], ', '.join(
                '%d x%d' % (k, m['status_lbs'].count(k))
                for k in sorted(set(m['status_lbs']))),
            len(m['status_pids'])))
    if m['status_calls']:
        out('    duration p50 %.0f ms, p99 %.0f ms, sum %.1f s' % (
            pct(m['status_calls'], 50) * 1000,
            pct(m['status_calls'], 99) * 1000, sum(m['status_calls'])))
    calls = m['all_status_calls']
    if calls:
        out('  every multilb status call until all seen (operating-status '
            'updates too): %d,' % len(calls))
        out('    duration p50 %.0f ms, p99 %.0f ms, sum %.1f s; objects per '
            'call p50 %.0f, max %d' % (
                pct(calls, 50) * 1000, pct(calls, 99) * 1000, sum(calls),
                pct(m['all_status_objects'], 50),
                max(m['all_status_objects'])))
        out('    = %.2f status calls per LB created' % (
            len(calls) / max(m['n_ok'], 1)))


def _placement(res, out):
    if 'placement' not in res:
        return
    out('')
    out('multilb load balancers per cluster after its burst (placed '
        'counter / cluster show / fake appliance files / max):')
    over = 0
    for name, (placed, shown, files, limit) in sorted(
            res['placement'].items()):
        worst = max(v or 0 for v in (placed, shown, files))
        over += max(0, worst - (limit or 0))
        out('  %-8s %5s %5s %5s %7s' % (name, placed, shown, files, limit))
    out('  capacity over-commit: %d load balancer(s)' % over)


def _meaning(args, bursts, out):
    polls = [t for b in bursts.values() for t in b['polls']]
    out('')
    out('What the figures mean:')
    out('* all ACTIVE seen: from the first POST sent until the list GET '
        '(every %g s) that' % args.poll)
    out('  showed every accepted load balancer ACTIVE or ERROR: an upper '
        'bound by up')
    out('  to one poll period plus one list GET (p50 %.0f ms here).' % (
        base.percentile(polls, 50) * 1000))
    out('* last ACTIVE written: until the last status update call that set '
        'a load')
    out('  balancer ACTIVE returned (call record; no poll resolution).')
    out('* DriverLibrary calls per LB: the calls naming a load balancer of '
        'the burst,')
    out('  over the accepted POSTs; "other calls" are the provider\'s '
        'calls for other')
    out('  load balancers or none (multilb: statistics, health) in the '
        'same time.')
    out('* Each DriverLibrary call forks a handler in the driver agent; on '
        '2 CPUs the')
    out('  %d POSTs and >= %d forked calls per burst set a floor for both '
        'providers.' % (args.count, 2 * args.count))


def report(args, res, out):
    bursts = {p: analyse(res, b) for p, b in res['bursts'].items()}
    _header(args, res, out)
    _totals(args, bursts, out)
    _per_lb(args, bursts, out)
    _calls(args, bursts, out)
    _placement(res, out)
    _meaning(args, bursts, out)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def order(value):
    names = [v.strip() for v in value.split(',') if v.strip()]
    if not names or len(set(names)) != len(names) or not set(names) <= {
            MULTILB, STUB}:
        raise argparse.ArgumentTypeError(
            'a comma-separated list of %s and %s' % (STUB, MULTILB))
    return names


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--count', type=int, default=200,
                   help='creates per burst (default 200)')
    p.add_argument('--clients', type=int, default=12,
                   help='client threads sending the POSTs (default 12: '
                        'each wsgiref API process serves one request and '
                        'queues 5)')
    p.add_argument('--clusters', type=int, default=8,
                   help='fake clusters (default 8)')
    p.add_argument('--capacity', type=int, default=100000,
                   help='max_loadbalancers of each fake cluster (default '
                        '100000; 25 x 8 = 200 is exactly full)')
    p.add_argument('--api-count', type=int, default=2,
                   help='Octavia API processes (default 2)')
    p.add_argument('--stub-threads', type=int, default=8,
                   help='stub worker threads per API process (default 8)')
    p.add_argument('--stub-driver-agents', type=int, choices=(1, 2),
                   default=2,
                   help='driver agents the stub threads alternate between '
                        '(default 2; 1: the API\'s own, the first)')
    p.add_argument('--order', type=order, default=[STUB, MULTILB],
                   help='bursts in this order (default %s,%s)' % (
                       STUB, MULTILB))
    p.add_argument('--warmup', type=int, default=4,
                   help='creates per provider before the bursts, not '
                        'measured; multilb\'s are deleted (default 4)')
    p.add_argument('--pause', type=float, default=10.0,
                   help='seconds before each burst (default 10)')
    p.add_argument('--poll', type=float, default=0.2,
                   help='seconds between two list GETs (default 0.2)')
    p.add_argument('--poll-interval', type=float, default=None,
                   help="multilb's [multilb] poll_interval (default: "
                        "multilb's own, %g)" % floor.default_poll_interval())
    p.add_argument('--timeout', type=float, default=900.0,
                   help='seconds to wait for one burst (default 900)')
    p.add_argument('--workdir',
                   help='work directory for the stack (must not exist or be '
                        'empty; default: a new temporary directory)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (logs, data, calls.jsonl) '
                        'at the end')
    args = p.parse_args(argv)
    if args.warmup < 0 or min(args.count, args.clients, args.clusters,
                              args.capacity, args.api_count,
                              args.stub_threads) < 1:
        p.error('--count, --clients, --clusters, --capacity, --api-count '
                'and --stub-threads must be >= 1, --warmup >= 0')
    if args.poll <= 0 or (args.poll_interval is not None and
                          args.poll_interval < 0.05):
        p.error('--poll must be > 0 and --poll-interval >= 0.05')
    return args


def main(argv=None):
    return base.run_main(argv, parse_args, run, report)


if __name__ == '__main__':
    base.entry(main)
