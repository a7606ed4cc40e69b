#!/usr/bin/env python3
"""Create -> ACTIVE of a full-graph load balancer: multilb (``fake``
backend) next to the latency floor, the least any provider must do on the
same stack (issue 14, P2).

A benchmark script, not a test: it prints figures and asserts nothing about
times.  Run it from the repository root with the Python of the venv that has
Octavia, openstacksdk and multilb installed::

    python benchmarks/latency_floor.py --count 30

One stack (tools/localstack) serves both providers: etcd (multilb's store
and coordination), MariaDB, one Octavia API and the driver agent with the
multilb provider agent; ``enabled_provider_drivers = multilb,floor_stub``.
The graph is the same for both: load balancer + listener HTTP:80 + pool
ROUND_ROBIN + 3 members + HTTP health monitor, in one POST.  Requests
alternate multilb, floor, multilb, floor...

The floor (``floor_stub``) is a stub provider this script writes into its
work directory (package ``latency_floor_stub`` with a ``*.dist-info`` whose
``entry_points.txt`` registers it; the directory is put on ``PYTHONPATH``
of the Octavia processes -- nothing is installed into the venv).  Its
``loadbalancer_create`` only notes the id; when the API's database
transaction commits (an SQLAlchemy ``after_commit`` hook in the API
process: no provider can read the graph earlier), a daemon thread of the
API process does exactly one ``DriverLibrary().get_loadbalancer(id)`` and
one ``update_loadbalancer_status`` with every object of the graph
ACTIVE/ONLINE.  So its create -> ACTIVE is Octavia's POST, one read and one
status update through the driver agent: what every provider pays.

multilb runs unchanged (its ``[multilb] poll_interval`` at multilb's
default unless ``--poll-interval`` says otherwise); its provider agent is
started through a second entry point of the same stub package,
``multilb_traced``, which only wraps ``DriverLibrary`` to record every call
and then calls ``multilb.agent.run``.

What is measured, per request:

* POST: client wall clock (``time.perf_counter``) from just before the
  request is sent until its 201 is read.
* POST -> ACTIVE seen: from the same start until the first status GET
  (every ``--poll`` s) that shows ``provisioning_status = ACTIVE``.
* POST -> ACTIVE written: from the same start until the provider's status
  update call that set the load balancer ACTIVE returned.  No poll
  resolution; the driver agent answers after its DB commit, so the client
  can see ACTIVE a few ms before the call returns (octavia-lib's receive
  sleeps), the same for both providers.
* Every ``DriverLibrary`` call of both providers (get / status update /
  statistics; start, end, whether a get found the object), recorded by a
  wrapper of ``DriverLibrary._send`` in the API process (the stub) and in
  the provider agent process (multilb), so the calls per create and where
  the time between POST and ACTIVE goes can be printed side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (REPO, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import create_to_active as base  # noqa: E402
from multilb.conf import core as multilb_core  # noqa: E402
from tests.functional.fleet import VIP_SUBNET, multilb_conf  # noqa: E402
from tools.localstack import (  # noqa: E402
    EtcdServer, MariaDBServer, OctaviaStack)

MULTILB = 'multilb'
STUB = 'floor_stub'
AGENT = 'multilb_traced'     # multilb.agent.run behind the call recorder
STUB_MODULE = 'latency_floor_stub'
TRACE_ENV = 'LATENCY_FLOOR_TRACE'
LB_PATH = base.LB_PATH
PROJECT = base.PROJECT

# multilb logs, after the apply and before recording the outcome (logger
# multilb.jobs; create_to_active.py's pattern expects multilb.worker):
#   "Load balancer <id> on cluster <c>: create loadbalancer <id> applied in
#   0.015s".  Used for the apply figure only; left out if not found.
APPLIED_RE = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ INFO multilb\.\w+ '
    r'.*Load balancer (\S+) on cluster \S+: create loadbalancer \S+ '
    r'applied in ([0-9.]+)s')

# The full graph: listener, pool, 3 members, health monitor.
GRAPH = [{
    'name': 'web', 'protocol': 'HTTP', 'protocol_port': 80,
    'default_pool': {
        'name': 'web-pool', 'protocol': 'HTTP',
        'lb_algorithm': 'ROUND_ROBIN',
        'members': [{'address': '192.0.2.%d' % (10 + i),
                     'protocol_port': 8080} for i in range(3)],
        'healthmonitor': {'type': 'HTTP', 'delay': 5, 'timeout': 3,
                          'max_retries': 3, 'url_path': '/healthz'}}}]

# The stub package, written into the work directory.  Kept as text so that
# nothing of it is importable from (or installed with) the repository.
STUB_SOURCE = '''\
"""Written by benchmarks/latency_floor.py into its work directory.

floor_stub: the least a provider does per create (one get_loadbalancer,
one status update, after the API's commit).  trace(): records every
DriverLibrary call of the process in $LATENCY_FLOOR_TRACE.  Not multilb.
"""
import json
import logging
import os
import queue
import threading
import time

from octavia_lib.api.drivers import driver_lib
from octavia_lib.api.drivers import provider_base
from oslo_config import cfg
import sqlalchemy.event
import sqlalchemy.orm

LOG = logging.getLogger(__name__)
_lock = threading.Lock()
_work = queue.Queue()
_local = threading.local()
_started = []


def _record(path, rec):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(rec) + '\\n').encode())
    finally:
        os.close(fd)


def trace(who):
    """Wrap DriverLibrary._send (every call goes through it)."""
    path = os.environ.get('LATENCY_FLOOR_TRACE')
    real = driver_lib.DriverLibrary._send
    if not path or getattr(real, 'traced', False):
        return

    def _send(self, socket_path, data):
        t0 = time.time()
        response, error = None, None
        try:
            response = real(self, socket_path, data)
        except Exception as exc:
            error = repr(exc)
            raise
        finally:
            rec = {'who': who, 'pid': os.getpid(), 't0': t0,
                   't1': time.time(), 'error': error}
            if response is not None:
                rec['resp_bytes'] = len(json.dumps(response))
            if socket_path == self.get_socket:
                rec.update(kind='get', object=data.get('object'),
                           id=data.get('id'), found=bool(response))
            elif socket_path == self.status_socket:
                lbs = data.get('loadbalancers') or [{}]
                rec.update(kind='status', id=lbs[0].get('id'),
                           lb_status=lbs[0].get('provisioning_status'),
                           lbs=len(data.get('loadbalancers') or []),
                           objects=sum(len(v) for v in data.values()
                                       if isinstance(v, list)))
            else:
                rec.update(kind='stats')
            _record(path, rec)
        return response

    _send.traced = True
    driver_lib.DriverLibrary._send = _send


def traced_multilb_agent(exit_event):
    """Provider agent: multilb.agent.run with its calls recorded."""
    trace('multilb')
    from multilb import agent
    return agent.run(exit_event)


def _up(objects, key):
    return [{'id': o[key], 'provisioning_status': 'ACTIVE',
             'operating_status': 'ONLINE'} for o in objects]


def _library(index):
    # The API's [driver_agent] sockets, unless the environment lists
    # directories of driver-agent sockets to spread the threads over
    # (benchmarks/burst.py: two driver agents).
    dirs = [d for d in os.environ.get('LATENCY_FLOOR_SOCKET_DIRS',
                                      '').split(os.pathsep) if d]
    if dirs:
        run = dirs[index % len(dirs)]
        return driver_lib.DriverLibrary(
            status_socket=os.path.join(run, 'status.sock'),
            stats_socket=os.path.join(run, 'stats.sock'),
            get_socket=os.path.join(run, 'get.sock'))
    conf = cfg.CONF.driver_agent
    return driver_lib.DriverLibrary(
        status_socket=conf.status_socket_path,
        stats_socket=conf.stats_socket_path,
        get_socket=conf.get_socket_path)


def _floor(index=0):
    lib = _library(index)
    while True:
        lb_id = _work.get()
        try:
            lb = lib.get_loadbalancer(lb_id)
            deadline = time.time() + 10
            while lb is None and time.time() < deadline:   # never seen
                time.sleep(0.01)
                lb = lib.get_loadbalancer(lb_id)
            pools = lb.pools or []
            lib.update_loadbalancer_status({
                'loadbalancers': [{'id': lb_id,
                                   'provisioning_status': 'ACTIVE',
                                   'operating_status': 'ONLINE'}],
                'listeners': _up(lb.listeners or [], 'listener_id'),
                'pools': _up(pools, 'pool_id'),
                'members': _up([m for p in pools
                                for m in p.get('members') or []],
                               'member_id'),
                'healthmonitors': _up([p['healthmonitor'] for p in pools
                                       if p.get('healthmonitor')],
                                      'healthmonitor_id')})
        except Exception:
            LOG.exception('floor_stub: load balancer %s failed', lb_id)


def _after_commit(session):
    pending, _local.pending = getattr(_local, 'pending', []), []
    for lb_id in pending:
        _work.put(lb_id)


class FloorDriver(provider_base.ProviderDriver):
    def __init__(self):
        super().__init__()
        with _lock:
            if not _started:
                trace('stub')
                sqlalchemy.event.listen(sqlalchemy.orm.Session,
                                        'after_commit', _after_commit)
                # One thread per API process unless the environment asks
                # for more (benchmarks/burst.py: concurrent creates).
                threads = int(os.environ.get('LATENCY_FLOOR_STUB_THREADS')
                              or 1)
                for i in range(max(1, threads)):
                    threading.Thread(target=_floor, args=(i,), daemon=True,
                                     name='floor-stub-%d' % i).start()
                _started.append(True)

    def loadbalancer_create(self, loadbalancer):
        # Called inside the API's transaction: hand the id over at commit.
        _local.pending = (getattr(_local, 'pending', []) +
                          [loadbalancer.loadbalancer_id])
'''

ENTRY_POINTS = '''\
[octavia.api.drivers]
%(stub)s = %(module)s:FloorDriver

[octavia.driver_agent.provider_agents]
%(agent)s = %(module)s:traced_multilb_agent
''' % {'stub': STUB, 'agent': AGENT, 'module': STUB_MODULE}


def write_stub_package(workdir):
    """The stub package + its dist-info under ``<workdir>/floor``; returns
    that directory (to go on PYTHONPATH)."""
    root = os.path.join(workdir, 'floor')
    info = os.path.join(root, '%s-1.0.dist-info' % STUB_MODULE)
    os.makedirs(info, exist_ok=True)
    with open(os.path.join(root, STUB_MODULE + '.py'), 'w') as f:
        f.write(STUB_SOURCE)
    with open(os.path.join(info, 'METADATA'), 'w') as f:
        f.write('Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n' %
                STUB_MODULE)
    with open(os.path.join(info, 'entry_points.txt'), 'w') as f:
        f.write(ENTRY_POINTS)
    return root


def default_poll_interval():
    return next(o.default for o in multilb_core.opts
                if o.name == 'poll_interval')


# --------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------

def create(client, name, provider):
    """POST one full graph; returns (lb_id, t_start, t_post_done)."""
    data = json.dumps({'loadbalancer': {
        'name': name, 'project_id': PROJECT, 'vip_subnet_id': VIP_SUBNET,
        'provider': provider, 'listeners': GRAPH}}).encode()
    t0 = time.perf_counter()
    status, body = client.request('POST', LB_PATH, data)
    t1 = time.perf_counter()
    if status not in (201, 202):
        raise base.BenchError('POST %s (%s): HTTP %s %s' % (
            name, provider, status, body))
    lb = body['loadbalancer']
    if lb.get('provider') != provider:
        raise base.BenchError('asked for provider %s, got %s' % (
            provider, lb.get('provider')))
    return lb['id'], t0, t1


def measure(args, client, out):
    status, body = client.request('GET', '/v2/lbaas/providers')
    names = {p['name'] for p in (body or {}).get('providers', [])}
    if status != 200 or not {MULTILB, STUB} <= names:
        raise base.BenchError('providers: HTTP %s %s' % (status, body))
    wall = time.time() - time.perf_counter()   # perf_counter -> epoch
    samples = {MULTILB: [], STUB: []}
    load_before = base.loadavg()
    total = args.warmup + args.count
    out('%d warm-up + %d measured requests per provider, alternating '
        '(%s, %s, ...)' % (args.warmup, args.count, MULTILB, STUB))
    t_run = time.perf_counter()
    window = None
    for i in range(total):
        if i == args.warmup:
            window = time.perf_counter() + wall
        for provider in (MULTILB, STUB):
            lb_id, t0, t1 = create(client, 'floor-%s-%03d' % (provider, i),
                                   provider)
            _state, t2 = base.wait_status(client, lb_id, t1, args.poll,
                                          args.timeout)
            if i >= args.warmup:
                samples[provider].append({
                    'id': lb_id, 't0': t0 + wall, 't1': t1 + wall,
                    't2': t2 + wall})
            if provider == MULTILB:
                # Not timed: every multilb create starts with an idle agent.
                # floor_stub load balancers stay (it implements no delete).
                base.delete_and_wait(client, lb_id, args.poll, args.timeout)
    return {'samples': samples, 'load': (load_before, base.loadavg()),
            'elapsed': time.perf_counter() - t_run,
            'window': (window, time.perf_counter() + wall),
            'get_times': list(client.get_times)}


# --------------------------------------------------------------------------
# The call record and the log: where the time goes
# --------------------------------------------------------------------------

def read_trace(path):
    calls = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    calls.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return calls


def recv_sleeps(call):
    """What octavia-lib's ``DriverLibrary._recv`` sleeps in one call at
    least: 10 ms after each digit of the length line and after each chunk
    of the payload (one chunk assumed)."""
    return 0.01 * (len(str(call['resp_bytes'])) + 1)


def wait_for_trace(path, samples, timeout=10.0):
    """The record of a call is written when the call returns, which can
    be after the client saw ACTIVE: wait (not timed) until every sample's
    ACTIVE status update is recorded; return the calls."""
    ids = {s['id'] for v in samples.values() for s in v}
    deadline = time.monotonic() + timeout
    while True:
        calls = read_trace(path)
        done = {c.get('id') for c in calls if c.get('kind') == 'status'
                and c.get('lb_status') == 'ACTIVE'}
        if ids <= done or time.monotonic() > deadline:
            return calls
        time.sleep(0.2)


def timeline(sample, calls, applied):
    """Per request: the provider's DriverLibrary calls for its load
    balancer between the POST and the ACTIVE seen, and the figures built
    from them (seconds, relative to the POST start)."""
    t0, t1, t2, lb_id = sample['t0'], sample['t1'], sample['t2'], sample['id']
    mine = sorted((c for c in calls if c.get('id') == lb_id and
                   t0 <= c['t0'] <= t2), key=lambda c: c['t0'])
    gets = [c for c in mine if c['kind'] == 'get']
    done = [c for c in mine if c['kind'] == 'status' and
            c.get('lb_status') == 'ACTIVE' and not c.get('error')]
    res = {'post': t1 - t0, 'seen': t2 - t0, 'gets': len(gets),
           'gets_missing': sum(1 for c in gets if not c.get('found')),
           'statuses': sum(1 for c in mine if c['kind'] == 'status'),
           'calls': len(mine)}
    if gets:
        res['first_get'] = gets[0]['t0'] - t0
        res['post_to_get'] = gets[0]['t0'] - t1
        res['get_call'] = [c['t1'] - c['t0'] for c in gets]
        res['get_sleeps'] = [recv_sleeps(c) for c in gets
                             if c.get('resp_bytes')]
    if done:
        st = done[0]
        res['written'] = st['t1'] - t0
        res['status_call'] = st['t1'] - st['t0']
        if st.get('resp_bytes'):
            res['status_sleeps'] = recv_sleeps(st)
        res['lag_seen'] = t2 - st['t1']
        before = [c for c in gets if c['t1'] <= st['t0']]
        if before:
            res['read_to_report'] = st['t0'] - before[-1]['t1']
    if lb_id in applied:
        res['apply'] = float(applied[lb_id][1].group(3))
        if gets and done:
            res['applied_to_report'] = done[0]['t0'] - applied[lb_id][0]
    return res


def analyse(res, calls, agent_log):
    ids = {s['id'] for v in res['samples'].values() for s in v}
    try:
        applied = base._stamps(agent_log, APPLIED_RE, ids)
    except OSError:
        applied = {}
    lines = {p: [timeline(s, calls, applied) for s in samples]
             for p, samples in res['samples'].items()}
    start, end = res['window']
    background = {}
    for c in calls:
        if start <= c['t0'] <= end:
            key = (c['who'], c['kind'])
            background[key] = background.get(key, 0) + 1
    return lines, background


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _values(lines, key):
    found = []
    for line in lines:
        value = line.get(key)
        if isinstance(value, list):
            found.extend(value)
        elif value is not None:
            found.append(value)
    return found


def _row(label, values):
    if not values:
        return '%-44s    0  (n/a)' % label
    return base.row(label, values)


def _count_row(label, lines, key):
    values = [line[key] for line in lines]
    counts = {}
    for v in values:
        counts[v] = counts.get(v, 0) + 1
    return '%-44s %s' % (label, ', '.join(
        '%s x%d' % (k, n) for k, n in sorted(counts.items())))


def report(args, res, out):
    lines, background = res['lines'], res['background']
    m, f = lines[MULTILB], lines[STUB]
    pct = base.percentile
    out('')
    out('=' * 78)
    out('create -> ACTIVE: multilb vs the latency floor (stub provider), '
        'full graph')
    out('=' * 78)
    for line in base.machine_info():
        out(line)
    out('load avg:  %s (before)  ->  %s (after); run took %.1fs' % (
        res['load'][0], res['load'][1], res['elapsed']))
    out('octavia:   %s, 1 API process (wsgiref), 1 driver agent; '
        'providers multilb, floor_stub' % base.octavia_version())
    out('multilb:   fake backend, %d clusters, store+coordination etcd, '
        'poll_interval %gs%s' % (
            args.clusters, res['poll_interval'],
            ' (multilb default)' if args.poll_interval is None else ''))
    out('floor:     after commit: 1 get_loadbalancer + 1 '
        'update_loadbalancer_status (thread in the API)')
    out('graph:     LB + listener HTTP:80 + pool ROUND_ROBIN + 3 members '
        '+ HTTP health monitor')
    out('client:    urllib, one request at a time; status polled every '
        '%gs (GET p50 %.1f ms)' % (
            args.poll, pct(res['get_times'], 50) * 1000))
    out('samples:   %d per provider after %d warm-up each, alternating '
        'multilb/floor' % (args.count, args.warmup))
    out('')
    out('%-44s %4s %9s %9s %9s %9s %9s' % (
        'latency (ms)', 'n', 'p50', 'p99', 'min', 'max', 'mean'))
    out('-' * 78)
    for label, key in (('POST (API round trip)', 'post'),
                       ('POST -> ACTIVE seen (client)', 'seen'),
                       ('POST -> ACTIVE written', 'written')):
        out(_row('floor    ' + label, _values(f, key)))
        out(_row('multilb  ' + label, _values(m, key)))
    out('')
    out('ratios multilb / floor (issue 14 target: <= 1.15 at p50, <= 1.3 '
        'at p99):')
    for label, key in (('ACTIVE seen   ', 'seen'),
                       ('ACTIVE written', 'written')):
        mv, fv = _values(m, key), _values(f, key)
        if not mv or not fv:
            out('  %s  n/a' % label)
            continue
        r50 = pct(mv, 50) / pct(fv, 50)
        r99 = pct(mv, 99) / pct(fv, 99)
        out('  %s  p50 %5.2f (%+5.0f ms) %-7s  p99 %5.2f (%+5.0f ms) %s' % (
            label, r50, (pct(mv, 50) - pct(fv, 50)) * 1000,
            'met' if r50 <= 1.15 else 'not met', r99,
            (pct(mv, 99) - pct(fv, 99)) * 1000,
            'met' if r99 <= 1.3 else 'not met'))
    out('')
    out('where the time goes (ms; DriverLibrary calls as recorded in each '
        'provider\'s')
    out('process, "applied" from the agent log):')
    out('%-44s %4s %9s %9s %9s %9s %9s' % (
        '', 'n', 'p50', 'p99', 'min', 'max', 'mean'))
    for who, data in (('floor  ', f), ('multilb', m)):
        out(_row('%s POST start -> first get sent' % who,
                 _values(data, 'first_get')))
        out(_row('%s   POST done -> first get sent' % who,
                 _values(data, 'post_to_get')))
        out(_row('%s get_loadbalancer call' % who,
                 _values(data, 'get_call')))
        out(_row('%s   of which octavia-lib recv sleeps' % who,
                 _values(data, 'get_sleeps')))
        out(_row('%s last get returned -> status sent' % who,
                 _values(data, 'read_to_report')))
        if who == 'multilb':
            out(_row('%s   apply + commit ("applied in")' % who,
                     _values(data, 'apply')))
            out(_row('%s   "applied" logged -> status sent' % who,
                     _values(data, 'applied_to_report')))
        out(_row('%s status update call' % who,
                 _values(data, 'status_call')))
        out(_row('%s   of which octavia-lib recv sleeps' % who,
                 _values(data, 'status_sleeps')))
        out(_row('%s status returned -> ACTIVE seen' % who,
                 _values(data, 'lag_seen')))
    out('')
    out('DriverLibrary calls per create (this LB\'s id, POST start .. '
        'ACTIVE seen):')
    for who, data in (('floor  ', f), ('multilb', m)):
        out(_count_row('%s get_loadbalancer' % who, data, 'gets'))
        out(_count_row('%s   of which found nothing' % who, data,
                       'gets_missing'))
        out(_count_row('%s update_loadbalancer_status' % who, data,
                       'statuses'))
        out(_count_row('%s all calls' % who, data, 'calls'))
    start, end = res['window']
    span = max(end - start, 1e-9)
    out('all DriverLibrary calls while the measured requests ran (%.1fs; '
        'multilb\'s' % span)
    out('deletes and background work included):')
    for (who, kind), n in sorted(background.items()):
        out('  %-8s %-7s %5d  (%.2f/s)' % (who, kind, n, n / span))
    out('')
    out('What the figures mean:')
    out('* floor: Octavia\'s POST, then (a thread of the API process, woken '
        'by the')
    out('  commit of the POST\'s transaction) one get_loadbalancer and one '
        'status')
    out('  update through the driver agent: the least any provider must '
        'do.')
    out('* ACTIVE seen: until the first client GET showing ACTIVE (polled '
        'every %g s:' % args.poll)
    out('  an upper bound). ACTIVE written: until the status update call '
        'that set the')
    out('  LB ACTIVE returned; the driver agent commits before it answers, '
        'so the')
    out('  client may see ACTIVE a little earlier (negative "status '
        'returned -> ACTIVE')
    out('  seen"). Both providers are measured the same way.')
    out('* POST done -> first get sent: multilb\'s agent finds new work by '
        'scanning')
    out('  every poll_interval (%g s) and reads its placement record first; '
        'a get that' % res['poll_interval'])
    out('  finds nothing (scan before Octavia committed) costs one more '
        'scan. The floor')
    out('  is woken by the commit: its get starts before the POST\'s '
        'response is read.')
    out('* last get returned -> status sent: the provider\'s own work '
        '(multilb: checks,')
    out('  apply on the fake appliance, the etcd commit of the outcome and '
        'the status')
    out('  outbox entry, all in "applied in"; then the outbox reads before '
        'the send).')
    out('* A DriverLibrary call costs both providers alike: the driver '
        'agent forks a')
    out('  handler that reads or writes the DB, and octavia-lib\'s client '
        'sleeps 10 ms')
    out('  after each digit of the reply\'s length line and each chunk '
        'read (estimated).')
    if args.count < 100:
        out('* With n = %d, p99 is essentially the maximum (one slow sample '
            'moves it).' % args.count)


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--count', type=int, default=30,
                   help='measured requests per provider (default 30)')
    p.add_argument('--warmup', type=int, default=2,
                   help='requests per provider not counted (default 2)')
    p.add_argument('--clusters', type=int, default=2,
                   help='fake clusters (default 2)')
    p.add_argument('--poll', type=float, default=0.05,
                   help='seconds between two status GETs (default 0.05)')
    p.add_argument('--poll-interval', type=float, default=None,
                   help="multilb's [multilb] poll_interval (default: "
                        "multilb's own, %g)" % default_poll_interval())
    p.add_argument('--timeout', type=float, default=60.0,
                   help='seconds to wait for one LB to go ACTIVE / away')
    p.add_argument('--workdir',
                   help='work directory for the stack (must not exist or be '
                        'empty; default: a new temporary directory)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (logs, data, the call '
                        'record calls.jsonl) at the end')
    args = p.parse_args(argv)
    if args.count < 1 or args.warmup < 0 or args.clusters < 1:
        p.error('--count and --clusters must be >= 1, --warmup >= 0')
    if args.poll <= 0 or (args.poll_interval is not None and
                          args.poll_interval < 0.05):
        p.error('--poll must be > 0 and --poll-interval >= 0.05')
    return args


def run(args, workdir, out):
    poll_interval = (default_poll_interval() if args.poll_interval is None
                     else args.poll_interval)
    trace = os.path.join(workdir, 'calls.jsonl')
    # Inherited by every process the stack starts (tools/localstack passes
    # os.environ on): the stub package and where the calls are recorded.
    os.environ['PYTHONPATH'] = os.pathsep.join(
        [write_stub_package(workdir)] +
        [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
    os.environ[TRACE_ENV] = trace
    clusters = {'bench%d' % i: 100000 for i in range(args.clusters)}
    etcd = db = stack = None
    try:
        out('starting etcd, MariaDB, Octavia API + driver agent in %s ...'
            % workdir)
        t = time.perf_counter()
        etcd = EtcdServer(workdir).start()
        db = MariaDBServer(workdir).start()
        url = db.create_database('octavia', 'octavia', 'octavia')
        conf = multilb_conf(
            workdir, etcd.store_url + '?prefix=/multilb/', clusters,
            poll_interval=poll_interval,
            coordination_url=etcd.store_url + '?timeout=5&lock_timeout=6'
                                              '&membership_timeout=6')
        stack = OctaviaStack(workdir, url, provider='%s,%s' % (MULTILB, STUB),
                             provider_agents=(AGENT,),
                             extra_conf=conf).start()
        out('stack ready in %.1fs: %s' % (time.perf_counter() - t,
                                          stack.api_url))
        res = measure(args, base.Client(stack.api_url), out)
        res['poll_interval'] = poll_interval
        res['lines'], res['background'] = analyse(
            res, wait_for_trace(trace, res['samples']),
            os.path.join(stack.log_dir, 'octavia-driver-agent.log'))
        return res
    finally:
        base.stop_all([stack, db, etcd], out)


def main(argv=None):
    return base.run_main(argv, parse_args, run, report)


if __name__ == '__main__':
    base.entry(main)
