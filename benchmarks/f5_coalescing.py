#!/usr/bin/env python3
"""Coalescing of the F5 backend's declaration queue: N load balancers of
T tenants changing at once on one (emulated) BIG-IP, against one
declaration per change sent one after the other, in one run.

A benchmark script, not a test: it prints figures and asserts nothing
about them. No stack, no root; from the repository root::

    .tox/py3/bin/python benchmarks/f5_coalescing.py   # 100 LBs, 10 tenants
    .tox/py3/bin/python benchmarks/f5_coalescing.py --delay 0.5 \
        --workers 32 100

The device is the AS3 device EMULATOR (tools/localstack/as3_device.py):
every declaration and every application removal holds its one device lock
for ``--delay`` seconds; a request arriving meanwhile is refused (counted
as ``concurrent_attempts`` / ``lock_503``).

**multilb**, for each ``--workers`` value W, on a fresh emulator: an
``F5Backend`` (backends/f5/backend.py) started as the agent starts it,
and a pool of W threads calling it as the agent's workers do (the f5
backend's ``PARALLEL_APPLIES``, the default of ``--workers``). Load
balancer i belongs to tenant i mod T (T projects, one VIP network: one
AS3 tenant each), so the changes of the tenants arrive interleaved.
Three phases, each waited for to the last load balancer:

* ``create``: ``apply_loadbalancer`` of the N graphs (full graphs of
  ``tests.unit.fixtures.lb_graph``: two listeners, one with TLS, two
  pools, L7 policies; a VIP address of its own each);
* ``update``: ``apply_loadbalancer`` again, each graph with a member added;
* ``delete``: ``delete_loadbalancer`` of each.

The backend's ``DeclarationQueue`` (backends/f5/declarations.py) sends the
pending additions and replacements of one tenant in one declaration;
removals are one declaration each (AS3's per-application DELETE has no
batch form) unless they take every application of a tenant (then one
``DELETE /declare/<tenant>``).

**baseline**, on another fresh emulator with the same delay: what a driver
without coalescing does, one declaration per change, serialized (one
thread): the same ``AS3Client`` the backend sends with (same transport,
same task polling), called directly, one ``declare_applications(tenant,
{app: body})`` per load balancer (the same body the backend's translation
makes) and one ``delete_application`` per load balancer.

Printed per phase and side: wall time, declarations the device processed,
declarations per load balancer, refused attempts (``concurrent_attempts``
and ``lock_503`` of the device: a sender that waits its turn causes none),
the queue's own busy count, errors, when the changes were done (p50 /
max, seconds from the start of the phase, when all of them were asked
for), and a check of what the device holds afterwards; then
the ratios baseline / multilb (time, declarations), the CPU count and the
load average at start and end.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import copy
import logging
import os
import platform
import sys
import threading
import time
import warnings

warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from backends import transport  # noqa: E402
from backends.f5 import backend as f5  # noqa: E402
from backends.f5 import names  # noqa: E402
from backends.f5 import translate  # noqa: E402
from multilb.conf import clusters as cluster_conf  # noqa: E402
from tests.unit import fixtures as fx  # noqa: E402
from tools.localstack import as3_device  # noqa: E402

PASSWORD = 'f5-benchmark-password'
NETWORK = '7d3f6a2e-2b1c-4f5e-9a8b-1c2d3e4f5a6b'
PHASES = ('create', 'update', 'delete')
COUNTERS = ('declarations_processed', 'concurrent_attempts', 'lock_503')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--lbs', type=int, default=100,
                        help='load balancers (default 100)')
    parser.add_argument('--tenants', type=int, default=10,
                        help='tenants: projects on one VIP network; load '
                        'balancer i is in tenant i mod T (default 10)')
    parser.add_argument('--workers', type=int, nargs='+',
                        default=[f5.F5Backend.PARALLEL_APPLIES],
                        help='threads calling the backend at once; several '
                        'values: one multilb run each (default %d, the '
                        'f5 backend\'s PARALLEL_APPLIES)'
                        % f5.F5Backend.PARALLEL_APPLIES)
    parser.add_argument('--delay', type=float, default=1.0,
                        help='seconds the emulated device takes per '
                        'declaration or removal, lock held (default 1.0)')
    parser.add_argument('--poll', type=float, default=0.1,
                        help='task_poll_interval: seconds between two reads '
                        'of a running declaration\'s task, both sides '
                        '(default 0.1; the option\'s default is 1.0)')
    parser.add_argument('--skip-baseline', action='store_true',
                        help='run the multilb side only')
    args = parser.parse_args(argv)
    if args.lbs < 1 or args.tenants < 1 or min(args.workers) < 1:
        parser.error('--lbs, --tenants and --workers must be at least 1')
    return args


# -- the load balancers -------------------------------------------------------


def projects(count):
    return ['%032x' % (0x5eed0000 + n) for n in range(count)]


def build_graphs(count, tenants):
    """``[(graph v1, graph v2)]``: v2 has one member more in its first
    pool."""
    owners = projects(tenants)
    found = []
    for n in range(count):
        lb_id = 'bench-lb-%04d' % n
        graph = fx.lb_graph(project_id=owners[n % tenants],
                            vip_network_id=NETWORK, loadbalancer_id=lb_id,
                            vip_address='10.%d.%d.%d' % (
                                20 + n // 62500, n // 250 % 250,
                                n % 250 + 1))
        graph['loadbalancer_id'] = lb_id
        updated = copy.deepcopy(graph)
        pool = updated['pools'][0]
        added = copy.deepcopy(pool['members'][0])
        added.update(member_id='member-added', name='member-added',
                     address='192.0.2.99')
        pool['members'].append(added)
        found.append((graph, updated))
    return found


def held(device):
    """``{tenant: {app: Application}}`` the emulator holds."""
    return {t: {k: v for k, v in body.items()
                if isinstance(v, dict) and v.get('class') == 'Application'}
            for t, body in device.tenants.items()}


def check(device, graphs, phase):
    """What the device should hold after ``phase``; '' or the problem."""
    apps = {a: body for t in held(device).values() for a, body in t.items()}
    if phase == 'delete':
        return '' if not apps else '%d applications left' % len(apps)
    want = {names.application(g[0]['loadbalancer_id']) for g in graphs}
    if set(apps) != want:
        return '%d of %d applications, %d unexpected' % (
            len(want & set(apps)), len(want), len(set(apps) - want))
    members = 3 if phase == 'update' else 2
    pool = names.obj('pool', graphs[0][0]['pools'][0]['pool_id'], 'pool')
    wrong = [a for a, body in apps.items()
             if len(body[pool]['members']) != members]
    return '' if not wrong else '%d applications without %d members' % (
        len(wrong), members)


# -- the two sides -----------------------------------------------------------


def make_backend(device, poll):
    options = {'endpoints': [device.url], 'username': 'admin',
               'password': PASSWORD, 'task_poll_interval': poll}
    config = cluster_conf.ClusterConfig(
        name='bench-bigip', backend='f5', max_loadbalancers=0,
        description='', backend_class=f5.F5Backend, options=options)
    backend = f5.F5Backend(config)
    backend.breaker = transport.ClusterBreaker(config.name)
    backend.start()
    return backend


class Phase:
    """The figures of one phase."""

    def __init__(self, name, count):
        self.name = name
        self.count = count
        self.started = None
        self.done_after = []
        self.errors = collections.Counter()
        self.lock = threading.Lock()
        self.wall = 0.0
        self.device = {}
        self.busy = 0
        self.check = ''

    def timed(self, call, *args):
        try:
            call(*args)
        except Exception as exc:  # noqa: B902 - counted and shown
            with self.lock:
                self.errors['%s: %s' % (type(exc).__name__,
                                        str(exc)[:120])] += 1
        with self.lock:
            self.done_after.append(time.monotonic() - self.started)


def measure(phase, device, run, busy=lambda: 0):
    before = {k: device.counters.get(k, 0) for k in COUNTERS}
    busy_before = busy()
    phase.started = time.monotonic()
    run()
    phase.wall = time.monotonic() - phase.started
    phase.device = {k: device.counters.get(k, 0) - before[k]
                    for k in COUNTERS}
    phase.busy = busy() - busy_before
    return phase


def run_multilb(graphs, workers, delay, poll):
    results = []
    with as3_device.AS3Device(users={'admin': PASSWORD},
                              delay=delay) as device:
        backend = make_backend(device, poll)
        queue = backend._queue
        try:
            with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                steps = {
                    'create': (backend.apply_loadbalancer,
                               [g[0] for g in graphs]),
                    'update': (backend.apply_loadbalancer,
                               [g[1] for g in graphs]),
                    'delete': (backend.delete_loadbalancer,
                               [g[0]['loadbalancer_id'] for g in graphs]),
                }
                for name in PHASES:
                    call, items = steps[name]
                    phase = Phase(name, len(graphs))

                    def run(call=call, items=items, phase=phase):
                        list(pool.map(lambda item: phase.timed(call, item),
                                      items))

                    results.append(measure(phase, device, run,
                                           lambda: queue.busy_seen))
                    phase.check = check(device, graphs, name)
        finally:
            backend.stop()
    return results


def run_baseline(graphs, delay, poll):
    results = []
    with as3_device.AS3Device(users={'admin': PASSWORD},
                              delay=delay) as device:
        backend = make_backend(device, poll)   # for its client only
        try:
            client = backend._declaring_client()   # versions read here

            def declare(graph):
                client.declare_applications(
                    names.tenant_of(graph),
                    {names.application(graph['loadbalancer_id']):
                     translate.application(graph, 0)},
                    translate.SCHEMA_VERSION)

            def remove(graph):
                client.delete_application(
                    names.tenant_of(graph),
                    names.application(graph['loadbalancer_id']))

            steps = {'create': (declare, [g[0] for g in graphs]),
                     'update': (declare, [g[1] for g in graphs]),
                     'delete': (remove, [g[0] for g in graphs])}
            for name in PHASES:
                call, items = steps[name]
                phase = Phase(name, len(graphs))

                def run(call=call, items=items, phase=phase):
                    for item in items:
                        phase.timed(call, item)

                results.append(measure(phase, device, run))
                phase.check = check(device, graphs, name)
        finally:
            backend.stop()
    return results


# -- printing ----------------------------------------------------------------


def quantile(values, q):
    values = sorted(values)
    if not values:
        return float('nan')
    rank = q * (len(values) - 1)
    low = int(rank)
    high = min(low + 1, len(values) - 1)
    return values[low] + (values[high] - values[low]) * (rank - low)


def show(title, phases):
    print('\n%s' % title)
    print('  %-7s %8s %6s %7s %10s %5s %6s %14s  %s' % (
        'phase', 'wall s', 'decl', 'decl/LB', 'refused', 'busy', 'errors',
        'done p50/max s', 'device check'))
    for p in phases:
        refused = '%d/%d' % (p.device['concurrent_attempts'],
                             p.device['lock_503'])
        print('  %-7s %8.1f %6d %7.2f %10s %5d %6d %7.1f/%6.1f  %s' % (
            p.name, p.wall, p.device['declarations_processed'],
            p.device['declarations_processed'] / p.count, refused, p.busy,
            sum(p.errors.values()), quantile(p.done_after, 0.5),
            max(p.done_after or [float('nan')]), p.check or 'ok'))
    for p in phases:
        for text, count in p.errors.most_common(5):
            print('    %s error x%d: %s' % (p.name, count, text))
    total = sum(p.wall for p in phases)
    decl = sum(p.device['declarations_processed'] for p in phases)
    print('  %-7s %8.1f %6d' % ('total', total, decl))


def compare(label, ours, base):
    print('\nbaseline / %s' % label)
    print('  %-7s %10s %10s %7s %8s %8s %7s' % (
        'phase', 'multilb s', 'baseline s', 'time x', 'ml decl',
        'bl decl', 'decl x'))
    rows = list(zip(ours, base))
    for ml, bl in rows + [(None, None)]:
        if ml is None:
            name = 'total'
            mt, bt = (sum(p.wall for p in ours), sum(p.wall for p in base))
            md = sum(p.device['declarations_processed'] for p in ours)
            bd = sum(p.device['declarations_processed'] for p in base)
        else:
            name, mt, bt = ml.name, ml.wall, bl.wall
            md = ml.device['declarations_processed']
            bd = bl.device['declarations_processed']
        print('  %-7s %10.1f %10.1f %7.2f %8d %8d %7.2f' % (
            name, mt, bt, bt / mt if mt else float('nan'), md, bd,
            bd / md if md else float('nan')))


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING,
                        format='%(asctime)s %(levelname)s %(name)s: '
                        '%(message)s')
    load_start = os.getloadavg()
    print('machine: %s, %d CPUs, Python %s' % (
        platform.platform(), os.cpu_count(), platform.python_version()))
    print('load average at start: %.2f %.2f %.2f' % load_start)
    print('%d load balancers, %d tenants, delay %.2f s per declaration, '
          'task poll %.2f s, workers %s' % (
              args.lbs, args.tenants, args.delay, args.poll,
              ' '.join(str(w) for w in args.workers)))
    graphs = build_graphs(args.lbs, args.tenants)
    started = time.monotonic()
    multilb = {}
    for workers in args.workers:
        multilb[workers] = run_multilb(graphs, workers, args.delay,
                                       args.poll)
        show('multilb, %d workers (refused = concurrent_attempts/lock_503)'
             % workers, multilb[workers])
    baseline = None
    if not args.skip_baseline:
        baseline = run_baseline(graphs, args.delay, args.poll)
        show('baseline: one declaration per change, serialized',
             baseline)
        for workers, phases in multilb.items():
            compare('multilb (%d workers)' % workers, phases, baseline)
    print('\nrun took %.0f s; load average at end: %.2f %.2f %.2f '
          '(start %.2f %.2f %.2f), %d CPUs' % (
              (time.monotonic() - started,) + os.getloadavg() + load_start
              + (os.cpu_count(),)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
