#!/usr/bin/env python3
"""Issue 14, P7 "fleet": 10,000 load balancers over 100 fake clusters.

A benchmark script, not a test: it prints figures and asserts nothing.
From the repository root, through the shared lock (it starts an etcd)::

    flock /tmp/multilb-functional.lock nice -n 5 .tox/py3/bin/python \\
        benchmarks/fleet_scale.py
    ... benchmarks/fleet_scale.py --lbs 2000 --clusters 20 --steady 20
    ... benchmarks/fleet_scale.py --store sqlite

What it does, in one run:

1. **Seed.** One etcd (``tools/localstack``, free ports, data in the work
   directory; or ``--store sqlite``). ``--lbs`` load balancers
   (``fleet_model.Fleet``: 8 objects each) are written straight into
   multilb's state store as a created, applied and reported load balancer
   leaves it (placement record, marker, index entries, ``sent/``, the
   cluster, listener and project counters), in commits of 100 keys: not
   through Octavia's API. Printed: the seed time and the store's size per
   load balancer (bytes of keys + values from ``get_prefix('')``, by kind
   of key), and etcd's database size before and after compaction and
   defragmentation.
2. **Agent starts.** ``--runs`` times, one after the other, a fresh
   provider agent process (``multilb.agent.run``, as
   ``agent_process.py`` runs it) over the ``--clusters`` fake clusters and
   the seeded store. Before the agent starts, the process fills the fake
   appliances (``backends.fake.backend._STATE``) with every load balancer,
   and the agent's line to Octavia is ``fleet_model.FleetOctavia``, which
   answers ``get_loadbalancer`` with the fleet's graphs, so nothing is
   released, re-applied or swept (the counts of applies, deletes, syncs and
   releases are printed to show it). The first run starts over a store
   that no agent has served yet; each later run is an agent restart (the
   previous agent stopped with SIGTERM). Printed per run, in seconds from
   the call of ``multilb.agent.run``: every cluster served (its worker
   started: the ``Cluster X is now served by agent`` line), every
   cluster's first resync finished (``ProbingMixin._resync`` returned),
   and, with ``--graphs``, every cluster's monitor knowing the graph of
   each of its load balancers (a monitor fetches ``FETCH_PER_ROUND`` per
   round from Octavia, only when it has health or traffic to report:
   never for these idle fake clusters); the Octavia reads and store calls
   made until then.
3. **Steady state.** After that and ``--settle`` seconds: the agent
   process's CPU (``time.process_time``, all threads) over ``--steady``
   seconds as a share of one core, and its store calls per second (and
   etcd requests, store plus coordination). Then, in a window of its own
   (the stack walk costs CPU), the store calls and etcd requests by call
   site (``fencing.verify <- worker._verify``...). Then, with
   ``--profile S``, ``yappi`` (CPU clock, every thread) for S more
   seconds: where the CPU goes, by function and by package.
4. **Placement.** With the agent stopped: ``--placements`` placements
   through ``multilb.placement.Placer.place`` (as the driver's
   ``loadbalancer_create`` calls it), alternating between the seeded store
   (``--lbs`` placed) and a second store with ``--small`` load balancers
   over the same clusters (its cluster health records copied from the
   first). Printed per store: the scheduler's decision time
   (``ClusterScheduler.select``, wall and CPU), the snapshot
   (``placement.snapshot``) and the whole ``place()``; the store reads per
   placement (calls, keys and bytes read).

Every process gets multilb's default ``[multilb]`` options unless
``--option NAME=VALUE`` says otherwise (e.g. ``poll_interval=5``). The
load average (``os.getloadavg``) is printed at the start, before and
after each agent run and at the end. Options: ``--help``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import sys
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import create_to_active as base  # noqa: E402
import fleet_model  # noqa: E402

CHUNK = 100       # puts per seeding commit (etcd allows 128 operations)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='See benchmarks/README.md, "fleet_scale.py".')
    p.add_argument('--lbs', type=int, default=10000,
                   help='load balancers seeded (default 10000)')
    p.add_argument('--clusters', type=int, default=100,
                   help='fake clusters (default 100)')
    p.add_argument('--projects', type=int, default=1000,
                   help='projects the load balancers belong to '
                        '(default 1000)')
    p.add_argument('--store', choices=('etcd', 'sqlite'), default='etcd',
                   help='etcd (store and coordination, default) or sqlite '
                        'with file:// locks')
    p.add_argument('--runs', type=int, default=2,
                   help='agent processes started one after the other; '
                        'the 2nd and later are restarts (default 2)')
    p.add_argument('--settle', type=float, default=5.0,
                   help='seconds between the last phase waited ("every '
                        'cluster resynced", or "every graph known" with '
                        '--graphs) and the steady-state count (default 5)')
    p.add_argument('--graphs', action='store_true',
                   help='also wait until every monitor knows the graph of '
                        'each of its load balancers (monitors fetch graphs '
                        'only to report health or traffic; the fake '
                        'clusters here have neither, so this waits until '
                        '--start-timeout; off by default)')
    p.add_argument('--steady', type=float, default=60.0,
                   help='seconds of the steady-state count (default 60)')
    p.add_argument('--profile', type=float, default=0.0,
                   help='seconds of yappi profile after the steady count, '
                        'in the last run only (default 0: none)')
    p.add_argument('--octavia-latency', type=float, default=0.0,
                   help='seconds every get_loadbalancer of the agent '
                        'sleeps, to stand in for the driver agent '
                        '(default 0)')
    p.add_argument('--option', action='append', default=[],
                   metavar='NAME=VALUE',
                   help='a [multilb] option for every process, e.g. '
                        'poll_interval=5 (repeatable; default: multilb\'s '
                        'defaults)')
    p.add_argument('--start-timeout', type=float, default=600.0,
                   help='give up on a run when the agent has not resynced '
                        'every cluster and known every graph by then '
                        '(default 600)')
    p.add_argument('--placements', type=int, default=200,
                   help='placements measured per store (default 200; 0: '
                        'skip step 4)')
    p.add_argument('--small', type=int, default=100,
                   help='load balancers of the second store of step 4 '
                        '(default 100)')
    p.add_argument('--workdir',
                   help='work directory (must not exist or be empty; '
                        'default: a new temporary directory)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (logs, data) at the end')
    # The agent process (started by this script, not by hand).
    p.add_argument('--child', metavar='CONFIG', help=argparse.SUPPRESS)
    p.add_argument('--result', help=argparse.SUPPRESS)
    p.add_argument('--run-number', type=int, default=1,
                   help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.lbs, args.clusters, args.projects, args.runs) < 1 or \
            args.steady <= 0:
        p.error('--lbs, --clusters, --projects, --runs must be >= 1, '
                '--steady > 0')
    return args


def load_conf(path):
    """A private ConfigOpts loaded from ``path`` (as the API process has
    its own)."""
    from oslo_config import cfg
    conf = cfg.ConfigOpts()
    conf(['--config-file', path], project='multilb-bench',
         default_config_files=[], default_config_dirs=[])
    return conf


def percentile(values, q):
    return base.percentile(values, q)


# --------------------------------------------------------------------------
# The agent process
# --------------------------------------------------------------------------

class Probes:
    """What the agent process watches in itself: store calls (and etcd
    requests), Octavia reads, workers started, first resyncs, monitors
    that know every graph, and what would undo the seed (applies,
    deletes, syncs queued, releases)."""

    def __init__(self):
        import idle_store_load
        self.counts = collections.Counter()
        self.lock = threading.Lock()
        idle_store_load.count_calls(self.counts, self.lock)
        self.started, self.resynced, self.known = {}, {}, {}
        self.gets = {'found': 0, 'missing': 0, 'first': None, 'last': None}
        self.callers = collections.Counter()
        self.attributing = threading.Event()
        attribute_calls(self.callers, self.lock, self.attributing)

    def on_get(self, lb_id, found):
        now = time.monotonic()
        with self.lock:
            self.gets['found' if found else 'missing'] += 1
            self.gets['first'] = self.gets['first'] or now
            self.gets['last'] = now
            self.counts['octavia_get'] += 1

    @staticmethod
    def _wrap(cls, name, after):
        original = getattr(cls, name)

        def wrapper(self, *a, **k):
            result = original(self, *a, **k)
            after(self, result, *a, **k)
            return result
        setattr(cls, name, wrapper)

    def _counted(self, label):
        def after(_self, _result, *a, **k):
            with self.lock:
                self.counts[label] += 1
        return after

    def install(self):
        from backends.fake import backend as fake_backend
        from multilb import monitor as monitor_mod
        from multilb import probing
        from multilb import state as state_mod
        from multilb import worker as worker_mod

        def worker_started(worker, _result):
            self.started.setdefault(worker.name, time.monotonic())

        def resync_done(worker, _result, *a, **k):
            self.resynced.setdefault(worker.name, time.monotonic())

        def graphs_known(monitor, result):
            graphs, placed = result
            if placed and set(placed) <= set(graphs):
                self.known.setdefault(monitor.name, time.monotonic())

        def completed(_state, _result, *a, **k):
            with self.lock:
                self.counts['released' if k.get('release')
                            else 'completed'] += 1

        self._wrap(worker_mod.ClusterWorker, 'start', worker_started)
        self._wrap(probing.ProbingMixin, '_resync', resync_done)
        self._wrap(monitor_mod.ClusterMonitor, '_known_graphs', graphs_known)
        self._wrap(fake_backend.FakeBackend, 'apply_loadbalancer',
                   self._counted('applies'))
        self._wrap(fake_backend.FakeBackend, 'delete_loadbalancer',
                   self._counted('deletes'))
        self._wrap(state_mod.State, 'add_sync', self._counted('syncs'))
        self._wrap(state_mod.State, 'complete', completed)

    def snapshot(self):
        with self.lock:
            return dict(self.counts), time.process_time(), time.monotonic()

    def since(self, before):
        """Time, CPU and counts since ``before`` (a snapshot)."""
        c0, cpu0, t0 = before
        c, cpu, now = self.snapshot()
        return {'seconds': now - t0, 'cpu': cpu - cpu0,
                'counts': {k: v - c0.get(k, 0) for k, v in c.items()}}

    def call_sites(self, seconds):
        """Store calls and etcd requests by call site over ``seconds``."""
        with self.lock:
            self.callers.clear()
        self.attributing.set()
        t0 = time.monotonic()
        time.sleep(seconds)
        self.attributing.clear()
        with self.lock:
            return {'seconds': time.monotonic() - t0,
                    'sites': [[k[0], k[1], v] for k, v in
                              self.callers.most_common(40)]}


def child(args):
    import agent_process
    from multilb import agent as agent_mod
    from multilb import octavia as octavia_mod
    from multilb import runtime

    probes = Probes()
    agent_process.setup_logging()
    agent_process.load_config(args.child)
    clusters = set(runtime.get().clusters.clusters)
    fleet = fleet_model.Fleet(args.lbs, args.clusters, args.projects)
    t0 = time.monotonic()
    fleet_model.fill_appliances(fleet)
    result = {'run': args.run_number, 'clusters': len(clusters),
              'lbs': fleet.lbs, 'filled': time.monotonic() - t0}
    octavia = fleet_model.FleetOctavia(fleet, args.octavia_latency,
                                       probes.on_get)
    octavia_mod.OctaviaClient = lambda *a, **k: octavia
    probes.install()

    exit_event = threading.Event()
    start = probes.snapshot()
    agent = threading.Thread(target=agent_mod.run, args=(exit_event,),
                             name='agent')
    agent.start()

    def phase(done):
        """Wait until ``done()``; the counts, CPU and time it took."""
        deadline = start[2] + args.start_timeout
        while not done():
            if time.monotonic() > deadline or not agent.is_alive():
                return None
            time.sleep(0.05)
        return probes.since(start)

    result['served'] = phase(lambda: set(probes.started) >= clusters)
    result['resynced'] = phase(lambda: set(probes.resynced) >= clusters)
    wanted = {fleet.cluster_of(n) for n in fleet.numbers()}
    result['known'] = (phase(lambda: set(probes.known) >= wanted)
                       if args.graphs else 'skipped')
    if result['served']:
        result['served_last'] = max(probes.started.values()) - start[2]
        result['served_first'] = min(probes.started.values()) - start[2]
    gets = probes.gets
    result['gets'] = {'found': gets['found'], 'missing': gets['missing'],
                      'first': gets['first'] and gets['first'] - start[2],
                      'last': gets['last'] and gets['last'] - start[2]}
    if result['known'] is not None and result['resynced'] is not None:
        time.sleep(args.settle)
        before = probes.snapshot()
        time.sleep(args.steady)
        result['steady'] = dict(probes.since(before),
                                threads=threading.active_count() - 1)
        # where the calls come from: a window of its own (the stack walk
        # costs CPU), as long as the count, at most 30 s
        result['callers'] = probes.call_sites(min(30.0, args.steady))
        if args.profile > 0:
            result['profile'] = profile(args.profile)
    result['totals'] = probes.since(start)
    with open(args.result, 'w') as f:
        json.dump(result, f)
    exit_event.set()
    agent.join(120)
    return 0


_SKIP = ('/multilb/store/', '/benchmarks/', '/etcd3gw/', '/requests/',
         '/urllib3/')


def _call_site():
    """``"module.function <- module.function"``: the first two frames
    of the caller outside the store engines, the HTTP stack and this
    script, in two different files."""
    frame = sys._getframe(2)
    found = []
    while frame is not None and len(found) < 2:
        name = frame.f_code.co_filename
        if not any(part in name for part in _SKIP):
            module = os.path.basename(name)[:-3]
            if not found or found[-1][0] != module:
                found.append((module, frame.f_code.co_name))
        frame = frame.f_back
    return ' <- '.join('%s.%s' % f for f in found)


def attribute_calls(callers, lock, on):
    """While ``on`` is set, count the store calls and etcd requests of
    this process by call site."""
    from multilb.store import etcd as etcd_store
    from multilb.store import etcd_client
    from multilb.store import sqlite as sqlite_store

    def attributed(cls, name, label):
        original = getattr(cls, name)

        def wrapper(self, *a, **k):
            if on.is_set():
                site = _call_site()
                with lock:
                    callers[(label, site)] += 1
            return original(self, *a, **k)
        setattr(cls, name, wrapper)

    for cls in (sqlite_store.SqliteKVStore, etcd_store.EtcdKVStore):
        for name in ('get', 'get_prefix', 'commit'):
            attributed(cls, name, name)
    attributed(etcd_client.FailoverClient, 'post', 'etcd request')


def profile(seconds):
    """yappi, CPU clock, every thread, for ``seconds``: the functions with
    the most CPU of their own, the most CPU in all (with callees), and the
    CPU of their own by package."""
    import yappi
    yappi.set_clock_type('cpu')
    yappi.clear_stats()
    cpu0 = time.process_time()
    yappi.start(builtins=True, profile_threads=True)
    time.sleep(seconds)
    yappi.stop()
    cpu = time.process_time() - cpu0
    stats = yappi.get_func_stats()
    rows = []
    for s in stats:
        rows.append((s.module or '', s.name, s.lineno, s.ncall, s.tsub,
                     s.ttot))
    yappi.clear_stats()

    def where(module):
        for key in ('/multilb/', '/backends/', '/scheduler/', '/tooz/',
                    '/etcd3gw/', '/requests/', '/urllib3/', '/http/',
                    '/json/', '/logging/', '/futurist/', '/oslo_',
                    '/threading.py', '/queue.py', '/socket.py', '/ssl.py',
                    '/concurrent/', '/email/', '/benchmarks/'):
            if key in module:
                return key.strip('/')
        if '/site-packages/' in module:
            return module.split('/site-packages/', 1)[1].split('/', 1)[0]
        if '/lib/python3' in module or module.startswith('<frozen'):
            return 'stdlib (other)'
        return 'builtins (C)' if '/' not in module else 'other'

    by_package = collections.Counter()
    for module, _name, _line, _n, tsub, _ttot in rows:
        by_package[where(module)] += tsub

    def short(row):
        module, name, line, ncall, tsub, ttot = row
        for marker in ('/site-packages/', '/work/main/', '/lib/python3'):
            if marker in module:
                module = module.split(marker, 1)[1]
                break
        return ['%s:%s %s' % (module, line, name), ncall, tsub, ttot]

    return {'seconds': seconds, 'cpu': cpu,
            'self': [short(r) for r in sorted(rows, key=lambda r: -r[4])
                     [:25]],
            'total': [short(r) for r in sorted(
                (r for r in rows if '/multilb/' in r[0]
                 or '/backends/' in r[0]), key=lambda r: -r[5])[:25]],
            'packages': by_package.most_common()}


# --------------------------------------------------------------------------
# Seeding and the store's size
# --------------------------------------------------------------------------

def seed(rt, fleet, out=None):
    """Write ``fleet`` into ``rt``'s store; the seconds it took and the
    keys written."""
    from multilb import keys
    kv = rt.state.kv
    t0 = time.monotonic()
    puts, written = {}, 0
    cluster_counts = collections.Counter()
    listener_counts = collections.Counter()
    project_counts = collections.Counter()
    now = time.time()

    def flush():
        nonlocal puts, written
        if puts and not kv.commit(puts=puts):
            raise base.BenchError('seeding commit refused')
        written += len(puts)
        puts = {}

    for n in fleet.numbers():
        cluster = rt.clusters.clusters[fleet.cluster_of(n)]
        entries, project, listeners = fleet.store_entries(n, cluster, now)
        cluster_counts[cluster.name] += 1
        listener_counts[cluster.name] += listeners
        project_counts[(project, cluster.name)] += 1
        if len(puts) + len(entries) > CHUNK:
            flush()
        puts.update(entries)
        if out and n and n % 2000 == 0:
            out('  seeded %d load balancers in %.1f s' % (
                n, time.monotonic() - t0))
    flush()
    counters = {keys.count_key(c): str(v) for c, v in cluster_counts.items()}
    counters.update({keys.listeners_key(c): str(v)
                     for c, v in listener_counts.items()})
    counters.update({keys.project_key(p, c): str(v)
                     for (p, c), v in project_counts.items()})
    for chunk in range(0, len(counters), CHUNK):
        part = dict(sorted(counters.items())[chunk:chunk + CHUNK])
        if not kv.commit(puts=part):
            raise base.BenchError('seeding commit refused')
        written += len(part)
    return time.monotonic() - t0, written


def store_size(kv, lbs):
    """Bytes of keys + values in the store, in all and by kind of key."""
    entries = kv.get_prefix('')
    kinds = collections.defaultdict(lambda: [0, 0])
    total = 0
    for e in entries:
        size = len(e.key.encode()) + len(e.value.encode())
        total += size
        kind = kinds[e.key.split('/', 1)[0]]
        kind[0] += 1
        kind[1] += size
    return {'keys': len(entries), 'bytes': total, 'per_lb': total / lbs,
            'kinds': {k: v for k, v in sorted(kinds.items())}}


def etcd_post(etcd, path, payload):
    req = urllib.request.Request(
        etcd.client_url + '/v3/' + path, data=json.dumps(payload).encode(),
        headers={'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.load(resp)


def etcd_sizes(etcd):
    """etcd's dbSize (and dbSizeInUse when etcd reports it) now, and
    after compacting its history and defragmenting."""
    before = etcd_post(etcd, 'maintenance/status', {})
    revision = before['header']['revision']
    etcd_post(etcd, 'kv/compaction', {'revision': revision,
                                      'physical': True})
    etcd_post(etcd, 'maintenance/defragment', {})
    after = etcd_post(etcd, 'maintenance/status', {})
    return {'before': int(before.get('dbSize', 0)),
            'before_in_use': int(before.get('dbSizeInUse', 0) or 0),
            'after': int(after.get('dbSize', 0)),
            'after_in_use': int(after.get('dbSizeInUse', 0) or 0),
            'revision': int(revision)}


# --------------------------------------------------------------------------
# Placement (step 4)
# --------------------------------------------------------------------------

class ReadCounter:
    """Counts the calls, keys and bytes one store instance answers."""

    def __init__(self, kv):
        self.calls = collections.Counter()
        self.keys = 0
        self.bytes = 0
        for name in ('get', 'get_prefix', 'commit'):
            setattr(kv, name, self._counted(name, getattr(kv, name)))

    def _counted(self, name, method):
        def wrapper(*a, **k):
            found = method(*a, **k)
            self.calls[name] += 1
            if name == 'get' and found is not None:
                found_list = [found]
            elif name == 'get_prefix':
                found_list = found
            else:
                found_list = []
            for e in found_list:
                self.keys += 1
                self.bytes += len(e.key) + len(e.value)
            return found
        return wrapper

    def take(self):
        taken = (dict(self.calls), self.keys, self.bytes)
        self.calls.clear()
        self.keys = self.bytes = 0
        return taken


def timed_placer(rt):
    """``(place, samples)``: ``rt``'s Placer with its select() timed."""
    placer = rt.placer
    samples = {'select_wall': [], 'select_cpu': []}
    select = placer.scheduler.select

    def timed_select(request, states):
        w0, c0 = time.perf_counter(), time.process_time()
        try:
            return select(request, states)
        finally:
            samples['select_wall'].append(time.perf_counter() - w0)
            samples['select_cpu'].append(time.process_time() - c0)
    placer.scheduler.select = timed_select
    return placer, samples


def measure_placements(args, stores, out):
    """``stores``: ``[(label, rt)]``; placements alternate between them."""
    from multilb import admission
    from multilb import placement
    snap_times = []
    original = placement.snapshot

    def timed_snapshot(*a, **k):
        w0 = time.perf_counter()
        try:
            return original(*a, **k)
        finally:
            snap_times.append(time.perf_counter() - w0)
    placement.snapshot = timed_snapshot
    warmup = 5
    newcomers = fleet_model.Fleet((args.placements + warmup) * len(stores),
                                  args.clusters, args.projects,
                                  first=10_000_000)
    results = {label: {'place': [], 'snapshot': [], 'calls': [],
                       'keys': [], 'bytes': []} for label, _rt in stores}
    prepared = []
    for label, rt in stores:
        placer, samples = timed_placer(rt)
        prepared.append((label, rt, placer, samples,
                         ReadCounter(rt.state.kv)))
    number = iter(newcomers.numbers())
    try:
        for i in range(args.placements + warmup):
            for label, rt, placer, samples, counter in prepared:
                lb = newcomers.graph(next(number))
                counter.take()
                del snap_times[:]
                w0 = time.perf_counter()
                placer.place(lb, reserve=admission.placement_reserver(rt, lb))
                elapsed = time.perf_counter() - w0
                calls, nkeys, nbytes = counter.take()
                if i < warmup:
                    del samples['select_wall'][-1:]
                    del samples['select_cpu'][-1:]
                    continue
                r = results[label]
                r['place'].append(elapsed)
                r['snapshot'].append(sum(snap_times))
                r['calls'].append(calls)
                r['keys'].append(nkeys)
                r['bytes'].append(nbytes)
        for label, rt, placer, samples, counter in prepared:
            results[label].update(samples)
    finally:
        placement.snapshot = original
    return results


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------

def write_config(path, store_url, coord_url, clusters, options=()):
    """``agent_process.write_config``, plus ``NAME=VALUE`` options in
    ``[multilb]``."""
    import agent_process
    agent_process.write_config(path, store_url, coord_url, clusters)
    if options:
        with open(path) as f:
            text = f.read()
        extra = ''.join('%s = %s\n' % tuple(
            part.strip() for part in option.split('=', 1))
            for option in options)
        with open(path, 'w') as f:
            f.write(text.replace('[multilb]\n', '[multilb]\n' + extra, 1))
    return path


def agent_run(args, workdir, config, number, out):
    from tools.localstack import Service
    where = os.path.join(workdir, 'run%d' % number)
    os.makedirs(where)
    result = os.path.join(where, 'result.json')
    argv = [sys.executable, os.path.abspath(__file__), '--child', config,
            '--result', result, '--run-number', str(number),
            '--lbs', str(args.lbs), '--clusters', str(args.clusters),
            '--projects', str(args.projects), '--settle', str(args.settle),
            '--steady', str(args.steady),
            *(['--graphs'] if args.graphs else []),
            '--octavia-latency', str(args.octavia_latency),
            '--start-timeout', str(args.start_timeout)]
    if args.profile and number == args.runs:
        argv += ['--profile', str(args.profile)]
    out('run %d: agent process started (load avg %s)' % (
        number, base.loadavg()))
    service = Service.spawn('agent-%d' % number, argv,
                            os.path.join(where, 'agent.log'))
    try:
        deadline = (time.monotonic() + args.start_timeout + args.settle
                    + args.steady + args.profile + 300)
        while service.alive() and not os.path.exists(result):
            if time.monotonic() > deadline:
                raise base.BenchError('run %d did not finish; see %s' % (
                    number, service.log_path))
            time.sleep(0.5)
        t0 = time.monotonic()
        while service.alive() and time.monotonic() - t0 < 150:
            time.sleep(0.2)
    finally:
        service.stop(timeout=30)
    if not os.path.exists(result):
        raise base.BenchError('run %d failed (status %s); see %s' % (
            number, service.returncode, service.log_path))
    with open(result) as f:
        res = json.load(f)
    res['log'] = service.log_path
    out('run %d: done (load avg %s)' % (number, base.loadavg()))
    return res


def run(args, workdir, out):
    from multilb import runtime
    from tools.localstack import EtcdServer
    res = {'load_start': base.loadavg()}
    out('fleet scale (issue 14, P7): %d load balancers over %d fake '
        'clusters, %d projects, store %s' % (
            args.lbs, args.clusters, args.projects, args.store))
    for line in base.machine_info():
        out(line)
    out('load avg:  %s (start)' % res['load_start'])
    etcd = None
    clusters = [fleet_model.cluster_name(i) for i in range(args.clusters)]
    try:
        if args.store == 'etcd':
            etcd = EtcdServer(workdir).start()
            store_url = etcd.store_url + '?prefix=/fleet/'
            small_url = etcd.store_url + '?prefix=/fleet-small/'
            coord_url = etcd.store_url
        else:
            store_url = 'sqlite:///%s/state.db' % workdir
            small_url = 'sqlite:///%s/small.db' % workdir
            coord_url = 'file://%s/locks' % workdir
        config = write_config(os.path.join(workdir, 'multilb.conf'),
                              store_url, coord_url, clusters, args.option)
        small_config = write_config(
            os.path.join(workdir, 'multilb-small.conf'), small_url,
            coord_url, clusters, args.option)
        out('store_url        = %s' % store_url)
        out('coordination_url = %s' % coord_url)
        out('[multilb] options: %s' % (', '.join(args.option)
                                       or "multilb's defaults"))
        rt = runtime.Runtime(load_conf(config))
        fleet = fleet_model.Fleet(args.lbs, args.clusters, args.projects)
        out('seeding %d load balancers ...' % args.lbs)
        res['seed_seconds'], res['seed_keys'] = seed(rt, fleet, out)
        res['size'] = store_size(rt.state.kv, args.lbs)
        if etcd is not None:
            res['etcd_size'] = etcd_sizes(etcd)
        else:
            res['sqlite_size'] = os.path.getsize(
                store_url[len('sqlite:///'):])
        out('seeded in %.1f s (load avg %s)' % (res['seed_seconds'],
                                                base.loadavg()))
        res['runs'] = []
        for number in range(1, args.runs + 1):
            res['runs'].append(agent_run(args, workdir, config, number, out))
        if args.placements > 0:
            small = runtime.Runtime(load_conf(small_config))
            seed(small, fleet_model.Fleet(args.small, args.clusters,
                                          args.projects, first=5_000_000))
            # the same cluster health and breaker records in both stores
            copied = {e.key: e.value
                      for e in rt.state.kv.get_prefix('cluster/')
                      if e.key.rsplit('/', 1)[-1] in ('health', 'breaker',
                                                      'admin')}
            if copied:
                small.state.kv.commit(puts=copied)
            out('placing %d load balancers on each store (alternating, '
                'load avg %s) ...' % (args.placements, base.loadavg()))
            labels = [('%d placed' % args.small, small),
                      ('%d placed' % args.lbs, rt)]
            res['placements'] = measure_placements(args, labels, out)
            res['placement_labels'] = [label for label, _rt in labels]
    finally:
        if etcd is not None:
            etcd.stop()
    res['load_end'] = base.loadavg()
    return res


def _fmt_phase(ph):
    if ph is None:
        return 'not reached'
    c = ph['counts']
    return ('%7.2f s  CPU %6.2f s  Octavia gets %6d  store calls %7d '
            '(get %d, prefix %d, commit %d)%s' % (
                ph['seconds'], ph['cpu'], c.get('octavia_get', 0),
                c.get('get', 0) + c.get('get_prefix', 0) + c.get('commit', 0),
                c.get('get', 0), c.get('get_prefix', 0), c.get('commit', 0),
                ', etcd requests %d' % c['etcd_requests']
                if 'etcd_requests' in c else ''))


def report(args, res, out):
    report_seed(args, res, out)
    report_starts(args, res, out)
    report_steady(args, res, out)
    for r in res['runs']:
        if r.get('profile'):
            report_profile(r, out)
    if res.get('placements'):
        report_placements(args, res, out)
    out('')
    out('load avg:  %s (start), %s (end)' % (res['load_start'],
                                             res['load_end']))


def report_seed(args, res, out):
    out('')
    out('== 1. seed and store size ==')
    out('seeded %d load balancers (%d keys, commits of <= %d puts) in '
        '%.1f s: %.0f load balancers/s' % (
            args.lbs, res['seed_keys'], CHUNK, res['seed_seconds'],
            args.lbs / res['seed_seconds']))
    size = res['size']
    out('store: %d keys, %d bytes of keys + values = %.0f bytes per load '
        'balancer' % (size['keys'], size['bytes'], size['per_lb']))
    for kind, (count, nbytes) in size['kinds'].items():
        out('  %-10s %7d keys %10d bytes  %7.1f bytes/LB' % (
            kind + '/', count, nbytes, nbytes / args.lbs))
    if 'etcd_size' in res:
        e = res['etcd_size']
        out('etcd dbSize after seeding: %.1f MB (%.0f bytes/LB; in use '
            '%.1f MB); after compaction at revision %d and '
            'defragmentation: %.1f MB (%.0f bytes/LB; in use %.1f MB)' % (
                e['before'] / 1e6, e['before'] / args.lbs,
                e['before_in_use'] / 1e6, e['revision'], e['after'] / 1e6,
                e['after'] / args.lbs, e['after_in_use'] / 1e6))
    if 'sqlite_size' in res:
        out('sqlite file after seeding: %.1f MB (%.0f bytes/LB)' % (
            res['sqlite_size'] / 1e6, res['sqlite_size'] / args.lbs))


def report_starts(args, res, out):
    out('')
    out('== 2. agent start / restart (seconds from multilb.agent.run) ==')
    for r in res['runs']:
        out('run %d (%s): appliances filled in %.1f s before the start' % (
            r['run'], 'first start' if r['run'] == 1 else
            'restart after SIGTERM of run %d' % (r['run'] - 1), r['filled']))
        if r.get('served'):
            out('  every cluster served:       %s' % _fmt_phase(r['served']))
            out('    (first cluster served at %.2f s, last at %.2f s)' % (
                r['served_first'], r['served_last']))
        else:
            out('  every cluster served:       not reached')
        out('  every cluster resynced:     %s' % _fmt_phase(r['resynced']))
        out('  every graph known (monitor): %s' % (
            'not waited for (--graphs)' if r['known'] == 'skipped'
            else _fmt_phase(r['known'])))
        g = r['gets']
        out('  Octavia gets: %d found, %d unknown; first at %s s, last at '
            '%s s' % (g['found'], g['missing'],
                      '%.2f' % g['first'] if g['first'] else '-',
                      '%.2f' % g['last'] if g['last'] else '-'))
        t = r['totals']['counts']
        out('  whole run: applies %d, deletes %d, syncs queued %d, '
            'releases %d, other completions %d' % (
                t.get('applies', 0), t.get('deletes', 0), t.get('syncs', 0),
                t.get('released', 0), t.get('completed', 0)))


def report_steady(args, res, out):
    out('')
    out('== 3. steady state, %d idle load balancers ==' % args.lbs)
    out('%4s %8s %9s %10s %7s %9s %8s %10s %8s' % (
        'run', 'seconds', 'agent CPU', 'calls/s', 'gets/s', 'prefix/s',
        'commit/s', 'etcd req/s', 'threads'))
    for r in res['runs']:
        s = r.get('steady')
        if not s:
            out('%4d  not measured' % r['run'])
            continue
        c, sec = s['counts'], s['seconds']
        calls = sum(c.get(k, 0) for k in ('get', 'get_prefix', 'commit'))
        out('%4d %8.1f %8.1f%% %10.1f %7.1f %9.1f %8.1f %10s %8d' % (
            r['run'], sec, 100.0 * s['cpu'] / sec, calls / sec,
            c.get('get', 0) / sec, c.get('get_prefix', 0) / sec,
            c.get('commit', 0) / sec,
            '%.1f' % (c['etcd_requests'] / sec) if 'etcd_requests' in c
            else '-', s['threads']))
        if c.get('octavia_get'):
            out('     (Octavia gets during the count: %d)' % c['octavia_get'])
    for r in res['runs']:
        a = r.get('callers')
        if not a:
            continue
        out('run %d: store calls and etcd requests by call site, per second '
            '(a window of %.0f s after the count):' % (r['run'],
                                                       a['seconds']))
        for label, site, count in a['sites'][:25]:
            out('  %8.1f/s  %-12s %s' % (count / a['seconds'], label, site))
    out('(agent CPU: time.process_time of the agent process, all threads, '
        'as a share of one core; calls: state store get + get_prefix + '
        'commit)')


def report_profile(r, out):
    p = r['profile']
    out('')
    out('profile of run %d: yappi, CPU clock, %.0f s, process CPU %.1f '
        's (%.1f%% of a core, profiler overhead included)' % (
            r['run'], p['seconds'], p['cpu'],
            100.0 * p['cpu'] / p['seconds']))
    total = sum(v for _k, v in p['packages']) or 1.0
    out('  own CPU by package: ' + ', '.join(
        '%s %.0f%%' % (k, 100.0 * v / total) for k, v in p['packages']
        if v / total >= 0.01))
    out('  %-70s %8s %8s %8s' % ('most CPU of their own', 'calls',
                                 'own s', 'total s'))
    for name, ncall, tsub, ttot in p['self'][:20]:
        out('  %-70s %8d %8.2f %8.2f' % (name[-70:], ncall, tsub, ttot))
    out('  %-70s %8s %8s %8s' % ('multilb/backends: most CPU in all',
                                 'calls', 'own s', 'total s'))
    for name, ncall, tsub, ttot in p['total'][:20]:
        out('  %-70s %8d %8.2f %8.2f' % (name[-70:], ncall, tsub, ttot))


def report_placements(args, res, out):
    out('')
    out('== 4. placement: Placer.place over %d clusters ==' %
        args.clusters)
    out('%-12s %5s %-22s %9s %9s %9s %9s' % (
        'store', 'n', 'figure', 'p50', 'p99', 'mean', 'max'))
    for label in res['placement_labels']:
        r = res['placements'][label]
        for name, values, scale, unit in (
                ('select() wall', r['select_wall'], 1e3, 'ms'),
                ('select() CPU', r['select_cpu'], 1e3, 'ms'),
                ('snapshot wall', r['snapshot'], 1e3, 'ms'),
                ('place() wall', r['place'], 1e3, 'ms'),
                ('keys read', r['keys'], 1, ''),
                ('bytes read', r['bytes'], 1, '')):
            if not values:
                continue
            out('%-12s %5d %-22s %9.2f %9.2f %9.2f %9.2f' % (
                label, len(values), name + (' (%s)' % unit if unit
                                            else ''),
                scale * percentile(values, 50),
                scale * percentile(values, 99),
                scale * statistics.fmean(values), scale * max(values)))
        calls = collections.Counter()
        for c in r['calls']:
            calls.update(c)
        out('%-12s %5s store calls per placement: %s' % (
            label, '', ', '.join('%s %.2f' % (k, v / len(r['calls']))
                                 for k, v in sorted(calls.items()))))


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    return base.run_main(argv, parse_args, run, report,
                         logs='run<N>/agent.log, etcd/')


if __name__ == '__main__':
    base.entry(main)
