#!/usr/bin/env python3
"""Churn: minutes of mixed operations (create, member batch, L7 change,
delete) on multilb over ``fake`` clusters, below what a stub provider
sustains on the same stack (issue 14, "Churn").

A benchmark script, not a test: it prints figures and asserts nothing about
times.  It exits 1 (and keeps its work directory) if at the end a load
balancer is stuck in PENDING_*, an object is in ERROR or the fake
appliances do not hold what Octavia has.  Run it from the repository root
with the Python of the venv that has Octavia and multilb installed,
through the shared lock::

    flock /tmp/multilb-functional.lock nice -n 5 .tox/py3/bin/python \\
        benchmarks/churn.py                       # 30 min, 20 clusters
    flock /tmp/multilb-functional.lock nice -n 5 .tox/py3/bin/python \\
        benchmarks/churn.py --duration 4          # a short run

What runs (one stack, tools/localstack): etcd (multilb's store and
coordination), MariaDB, ``--api-count`` Octavia API processes (wsgiref, one
request at a time each) and one octavia-driver-agent with one multilb
provider agent (the plain ``multilb`` entry point, so that its RSS is
multilb's own).  Providers ``multilb,floor_stub``: the stub is
``benchmarks/latency_floor.py``'s (imported, not copied), run from
``--stub-threads`` threads per API process as ``benchmarks/burst.py``
does.  multilb uses ``multilb_conf`` of ``tests/functional/fleet.py`` over
``--clusters`` fake clusters; its ``fake_state_dir`` (``<workdir>/
appliance``) mirrors every load balancer a fake cluster holds as
``<cluster>/<lb id>.json``: that is the appliance side counted at the end.

1. Baseline: ``floor_stub`` implements only ``loadbalancer_create`` (one
   ``get_loadbalancer`` + one status update after the API's commit), so
   what is measured is its sustained rate of full-graph creates: a
   saturated closed loop of ``--baseline-inflight`` creates in flight
   for ``--baseline`` s; the rate is the ACTIVE completions per second
   after the first quarter (at most 15 s).  Stub load balancers are not
   deleted (the stub has no delete).  The churn rate is ``--rate`` if
   given, else min(5, STUB_SHARE x that rate): the stub's figure is a
   saturated rate of creates at 2 DriverLibrary calls each, multilb's
   mix costs ~2.4 calls per operation, and at 0.8 x the stub's rate the
   backlog grew all through a run (benchmarks/README.md).
2. Fill: creates at the churn rate until ``--population`` multilb load
   balancers exist, then wait until all are ACTIVE.  The agent's RSS is
   taken here ("start").
3. Churn: ``--duration`` minutes, one operation every 1/rate s (open loop:
   the schedule does not wait for answers; an operation that starts more
   than ``LATE`` s after its slot, because every client thread was busy,
   is counted late), from ``--clients`` threads, alternating the API
   processes.  Mix (``--mix``): create (the full graph: LB + HTTP
   listener + pool + 3 members + HTTP health monitor, one POST), member
   batch (``PUT /v2/lbaas/pools/{id}/members`` with a new list of 1-5
   members), L7 change (on the listener: create a REJECT policy if it
   has none, else add a PATH rule to it if it has none, else update the
   policy's action, update its rule or delete the policy; one API call
   each: Octavia 19 answers 500 to a policy POSTed with its rules),
   delete (cascade).  Creates and deletes
   keep the population within +-10 % of ``--population``.  Only load
   balancers the client saw ACTIVE, in a list GET started after its last
   operation was answered, are operated on; one list GET
   (``?provider=multilb&fields=id&fields=provisioning_status``) every
   ``--poll`` s, never one GET per load balancer.  A 409 (immutable) is
   counted, not fatal.  The agent's RSS and the load average are sampled
   every ``--sample`` s.
4. End: no more operations; wait (``--settle-timeout``) until no load
   balancer is PENDING_*; then count the objects of provider multilb
   (load balancers, listeners, pools, members, health monitors, L7
   policies, L7 rules) through the API and in the appliance files, by id.

``--trace`` runs multilb's agent through ``latency_floor.py``'s
``multilb_traced`` entry point instead, so that its DriverLibrary calls
are recorded (``calls.jsonl``) and printed by kind.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import random
import re
import signal
import shutil
import sys
import threading
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for _path in (REPO, HERE):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import burst  # noqa: E402
import create_to_active as base  # noqa: E402
import latency_floor as floor  # noqa: E402
from tests.functional.fleet import VIP_SUBNET, multilb_conf  # noqa: E402
from tools.localstack import (  # noqa: E402
    EtcdServer, MariaDBServer, OctaviaStack)

MULTILB, STUB = floor.MULTILB, floor.STUB
AGENT = MULTILB          # the plain entry point: the RSS is multilb's own
# Default churn rate, as a share of the stub's saturated create rate.
STUB_SHARE = 0.5
LB_PATH, PROJECT = floor.LB_PATH, floor.PROJECT
KINDS = ('create', 'members', 'l7', 'delete')
LATE = 1.0               # s after its slot: an operation sent late
PENDING = ('PENDING_CREATE', 'PENDING_UPDATE', 'PENDING_DELETE')
OBJECTS = ('loadbalancer', 'listener', 'pool', 'member', 'healthmonitor',
           'l7policy', 'l7rule')


# --------------------------------------------------------------------------
# The API
# --------------------------------------------------------------------------

class Api:
    """base.Client per API process, used in turn; requests sent again
    after a connection reset (burst.send)."""

    def __init__(self, urls, timeout=60):
        self.clients = [base.Client(u, timeout=timeout) for u in urls]
        self._next = 0
        self._lock = threading.Lock()

    def call(self, method, path, body=None):
        """(status, parsed body, resets)."""
        with self._lock:
            client = self.clients[self._next % len(self.clients)]
            self._next += 1
        data = json.dumps(body).encode() if body is not None else None
        return burst.send(client, method, path, data)


def list_all(api, path, key):
    """Every item of a collection, following Octavia's ``next`` links."""
    items = []
    sep = '&' if '?' in path else '?'
    url = '%s%slimit=1000' % (path, sep)
    while url:
        status, body, _resets = api.call('GET', url)
        if status != 200:
            raise base.BenchError('GET %s: HTTP %s %s' % (url, status, body))
        items.extend(body[key])
        url = None
        for link in body.get(key + '_links') or []:
            if link.get('rel') == 'next':
                parts = urllib.parse.urlsplit(link['href'])
                url = parts.path + ('?' + parts.query if parts.query else '')
    return items


def lb_statuses(api, provider):
    """{id: provisioning_status} of every (not deleted) LB of provider."""
    found = list_all(api, '%s?provider=%s&fields=id&fields='
                     'provisioning_status' % (LB_PATH, provider),
                     'loadbalancers')
    return {lb['id']: lb['provisioning_status'] for lb in found
            if lb['provisioning_status'] != 'DELETED'}


def create_body(name, provider):
    return {'loadbalancer': {
        'name': name, 'project_id': PROJECT, 'vip_subnet_id': VIP_SUBNET,
        'provider': provider, 'listeners': floor.GRAPH}}


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------

def rss_kb(pid):
    """VmRSS of ``pid`` in kB (None if gone)."""
    return _proc_status(pid, 'VmRSS:')


def threads_of(pid):
    """Threads of ``pid`` (None if gone): every thread has a stack and
    may get a malloc arena of its own (:func:`memory_parts`), so RSS
    follows the thread pools as they grow to their bounds."""
    return _proc_status(pid, 'Threads:')


MEMORY_PARTS = ('stacks', 'arenas', 'heap', 'anon', 'file')
_MAPPING = re.compile(r'^[0-9a-f]+-[0-9a-f]+ ')
_THREAD_STACK = 8 << 20          # glibc's default, ulimit -s 8192
_ARENA_ALIGN = 64 << 20          # glibc's HEAP_MAX_SIZE on 64 bits


def memory_parts(pid):
    """Where ``pid``'s RSS is, in kB by kind of mapping (None if gone):
    ``stacks`` thread stacks (8 MiB anonymous), ``arenas`` the malloc
    arenas of threads other than the main one (anonymous, 64 MiB
    aligned), ``heap`` the main arena, ``anon`` the rest of the anonymous
    memory (Python's object arenas, large buffers), ``file`` mapped files
    (code).  Growth in stacks and arenas follows the thread count; growth
    in heap and anon with a steady thread count is what a leak looks
    like."""
    parts = dict.fromkeys(MEMORY_PARTS, 0)
    kind = 'anon'
    try:
        with open('/proc/%d/smaps' % pid) as f:
            for line in f:
                if _MAPPING.match(line):
                    kind = _mapping_kind(line.split())
                elif line.startswith('Rss:'):
                    parts[kind] += int(line.split()[1])
    except (OSError, ValueError):
        return None
    return parts


def _mapping_kind(fields):
    low, high = (int(x, 16) for x in fields[0].split('-'))
    path = fields[5] if len(fields) > 5 else ''
    if path == '[heap]':
        return 'heap'
    if path.startswith('/'):
        return 'file'
    if path:
        return 'anon'
    if high - low == _THREAD_STACK:
        return 'stacks'
    if low % _ARENA_ALIGN == 0 and high - low < _ARENA_ALIGN:
        return 'arenas'
    return 'anon'


def _proc_status(pid, field):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def agent_pid(stack, agent):
    pids = stack.provider_agent_pids(agent)
    return pids[0] if pids else None


class Sampler(threading.Thread):
    """Every ``period`` s: (seconds since start, agent pid, its RSS kB,
    the driver agent's RSS kB, load average, LBs listed PENDING_*,
    operations waiting for their answer or ACTIVE, the agent's
    threads, its :func:`memory_parts`)."""

    def __init__(self, stack, agent, churn, period):
        super().__init__(daemon=True, name='sampler')
        self.stack, self.agent, self.churn = stack, agent, churn
        self.period = period
        self.samples = []
        self.stopping = threading.Event()
        self.t0 = time.monotonic()

    def sample(self):
        pid = agent_pid(self.stack, self.agent)
        parent = self.stack.driver_agent
        listed, waiting = self.churn.pending()
        row = (time.monotonic() - self.t0, pid,
               rss_kb(pid) if pid else None,
               rss_kb(parent.pid) if parent is not None else None,
               base.loadavg(), len(listed), waiting,
               threads_of(pid) if pid else None,
               memory_parts(pid) if pid else None)
        self.samples.append(row)
        return row

    def run(self):
        while not self.stopping.wait(self.period):
            self.sample()


# --------------------------------------------------------------------------
# Phase 1: what the stub sustains
# --------------------------------------------------------------------------

def stub_baseline(args, api, out):
    """Closed loop of ``args.baseline_inflight`` stub creates in flight
    for ``args.baseline`` s; the ACTIVE completions per second after the
    first quarter (<= 15 s) of it."""
    cond = threading.Condition()
    active_at = {}
    stop_polls = threading.Event()
    poll_client = Api([api.clients[0].api])

    def poller():
        while not stop_polls.is_set():
            try:
                found = lb_statuses(poll_client, STUB)
            except Exception as exc:  # noqa: B902 - next poll
                out('  stub poll failed: %r' % exc)
                found = {}
            now = time.monotonic()
            with cond:
                for lb_id, st in found.items():
                    if st in ('ACTIVE', 'ERROR') and lb_id not in active_at:
                        active_at[lb_id] = (st, now)
                cond.notify_all()
            stop_polls.wait(args.poll)

    t0 = time.monotonic()
    t_stop = t0 + args.baseline
    skip = min(15.0, args.baseline / 4.0)
    done, posts, errors, latencies = [], [], collections.Counter(), []

    def worker(index):
        n = 0
        while time.monotonic() < t_stop:
            name = 'stub-%02d-%04d' % (index, n)
            n += 1
            start = time.monotonic()
            try:
                status, body, _r = api.call('POST', LB_PATH,
                                            create_body(name, STUB))
            except Exception as exc:  # noqa: B902 - counted
                errors[type(exc).__name__] += 1
                continue
            posts.append(time.monotonic() - start)
            if status not in (201, 202):
                errors['HTTP %s' % status] += 1
                continue
            lb_id = body['loadbalancer']['id']
            with cond:
                cond.wait_for(lambda: lb_id in active_at, timeout=300)
                st, at = active_at.get(lb_id, ('TIMEOUT', time.monotonic()))
            if st != 'ACTIVE':
                errors[st] += 1
                continue
            done.append(at)
            latencies.append(at - start)

    out('baseline: %s, closed loop of %d creates in flight for %gs ...' % (
        STUB, args.baseline_inflight, args.baseline))
    load = base.loadavg()
    poll_thread = threading.Thread(target=poller, daemon=True)
    poll_thread.start()
    with concurrent.futures.ThreadPoolExecutor(args.baseline_inflight) as ex:
        list(ex.map(worker, range(args.baseline_inflight)))
    stop_polls.set()
    poll_thread.join()
    window = [t for t in done if t0 + skip <= t <= t_stop]
    span = max(args.baseline - skip, 1e-9)
    return {'rate': len(window) / span, 'window': span,
            'completed': len(done), 'in_window': len(window),
            'posts': posts, 'latencies': latencies, 'errors': errors,
            'load': (load, base.loadavg())}


# --------------------------------------------------------------------------
# Phases 2 and 3: fill and churn
# --------------------------------------------------------------------------

class LB:
    """What the client knows of one multilb load balancer."""

    __slots__ = ('id', 'listener', 'pool', 'policy', 'rule', 'action',
                 'status', 'op', 'adopted')

    def __init__(self, lb_id, listener=None, pool=None, adopted=False):
        self.id, self.listener, self.pool = lb_id, listener, pool
        self.policy = self.rule = self.action = None
        self.status = None
        self.op = None       # {'kind', 't0', 't_resp'}: waiting for ACTIVE
        self.adopted = adopted


class Churn:
    """The client's view of multilb's load balancers, the operations and
    their figures."""

    def __init__(self, args, api, poll_api, rng, out):
        self.args, self.api, self.poll_api = args, api, poll_api
        self.rng, self.out = rng, out
        self.lock = threading.Lock()
        self.lbs = {}
        self.creating = 0               # creates chosen, not answered yet
        self.unknown = {}               # listed, not ours (yet): first seen
        self.seq = 0
        self.sent = collections.Counter()          # op kind -> sent
        self.accepted = collections.Counter()      # op kind -> 2xx
        self.conflicts = collections.Counter()     # op kind -> 409
        self.api_errors = collections.Counter()    # (kind, what) -> n
        self.skipped = collections.Counter()       # kind -> no target
        self.latency = collections.defaultdict(list)
        self.error_lbs = {}                        # id -> op kind seen
        self.vanished = []
        self.adopted = []
        self.lags = []
        self.late = 0
        self.error_samples = []
        self.timeline = []          # (operation start, -> ACTIVE / gone)
        self.polls = []
        self.poll_failures = 0
        self.statuses = {}
        self.phase = 'fill'
        self._stop_polls = threading.Event()
        self._poller = None

    # -- the list poll ----------------------------------------------------

    def start_polls(self):
        self._poller = threading.Thread(target=self._poll_loop, daemon=True,
                                        name='poller')
        self._poller.start()

    def stop_polls(self):
        self._stop_polls.set()
        if self._poller is not None:
            self._poller.join()

    def _poll_loop(self):
        while not self._stop_polls.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: B902 - next poll
                self.poll_failures += 1
                self.out('  list poll failed: %r' % exc)
            self._stop_polls.wait(self.args.poll)

    def poll_once(self):
        t_start = time.monotonic()
        found = lb_statuses(self.poll_api, MULTILB)
        t_end = time.monotonic()
        self.polls.append(t_end - t_start)
        with self.lock:
            self.statuses = found
            for lb in list(self.lbs.values()):
                st = found.get(lb.id)
                lb.status = st
                op = lb.op
                answered = (op is not None and op['t_resp'] is not None and
                            op['t_resp'] <= t_start)
                if st is None:
                    if op is not None and not answered:
                        continue            # its answer comes first
                    if answered and op['kind'] == 'delete':
                        self.latency['delete'].append(t_end - op['t0'])
                        self.timeline.append((op['t0'], t_end - op['t0']))
                    elif not answered or op['kind'] != 'wait':
                        # Gone without a delete of ours.  (A 'wait' is
                        # an operation that failed on the client's side,
                        # maybe a delete that went through.)
                        self.vanished.append(lb.id)
                    del self.lbs[lb.id]
                    continue
                if st == 'ERROR':
                    self.error_lbs.setdefault(
                        lb.id, op['kind'] if op else 'unknown')
                if not answered:
                    continue
                if st == 'ACTIVE' and op['kind'] != 'delete':
                    if op['kind'] != 'wait':
                        self.latency[op['kind']].append(t_end - op['t0'])
                        self.timeline.append((op['t0'], t_end - op['t0']))
                    lb.op = None
                elif st == 'ERROR':
                    lb.op = None
            for lb_id in found:
                if lb_id in self.lbs:
                    self.unknown.pop(lb_id, None)
                    continue
                first = self.unknown.setdefault(lb_id, t_end)
                # A create's POST answered after this poll; adopt only
                # what stays unknown for longer than a client timeout.
                if t_end - first > 2 * self.api.clients[0].timeout:
                    self.unknown.pop(lb_id)
                    self.lbs[lb_id] = LB(lb_id, adopted=True)
                    self.lbs[lb_id].status = found[lb_id]
                    self.adopted.append(lb_id)

    # -- choosing ----------------------------------------------------------

    def live(self):
        with self.lock:
            return self._live()

    def _live(self):
        return (sum(1 for lb in self.lbs.values()
                    if not (lb.op and lb.op['kind'] == 'delete')) +
                self.creating)

    def choose(self, mix):
        """(kind, LB or None) for the next slot, or None (skipped)."""
        population, slack = self.args.population, self.args.slack
        with self.lock:
            kind = self.rng.choices(list(mix), weights=list(mix.values()))[0]
            live = self._live()
            if kind == 'create' and live >= population + slack:
                kind = 'delete'
            elif kind == 'delete' and live <= population - slack:
                kind = 'create'
            if kind == 'create':
                self.creating += 1
                return kind, None
            ready = [lb for lb in self.lbs.values()
                     if lb.op is None and lb.status == 'ACTIVE' and
                     (kind == 'delete' or not lb.adopted)]
            if not ready:
                self.skipped[kind] += 1
                return None
            lb = self.rng.choice(sorted(ready, key=lambda x: x.id))
            lb.op = {'kind': kind, 't0': None, 't_resp': None}
            return kind, lb

    # -- operations -------------------------------------------------------

    def _request(self, kind, method, path, body):
        """(status, body) or (None, error text); counted."""
        with self.lock:
            self.sent[kind] += 1
        try:
            status, answer, _resets = self.api.call(method, path, body)
        except Exception as exc:  # noqa: B902 - counted, not fatal
            with self.lock:
                self.api_errors[(kind, type(exc).__name__)] += 1
            return None, repr(exc)
        with self.lock:
            if 200 <= status < 300:
                self.accepted[kind] += 1
            elif status == 409:
                self.conflicts[kind] += 1
            else:
                self.api_errors[(kind, 'HTTP %s' % status)] += 1
                if len(self.error_samples) < 10:
                    self.error_samples.append('%s %s %s: HTTP %s %s' % (
                        kind, method, path, status, str(answer)[:200]))
        return status, answer

    def run_op(self, kind, lb, due):
        start = time.monotonic()
        lag = start - due
        with self.lock:
            self.lags.append(lag)
            if lag > LATE:
                self.late += 1
        try:
            if kind == 'create':
                self._create(start)
            else:
                getattr(self, '_' + kind)(lb, start)
        except Exception as exc:  # noqa: B902 - a client bug: say it
            with self.lock:
                self.api_errors[(kind, 'client %r' % exc)] += 1
                if lb is not None and lb.op is not None:
                    lb.op = {'kind': 'wait', 't0': start,
                             't_resp': time.monotonic()}

    def _done(self, lb, kind, start, status):
        """After the answer: wait for ACTIVE (or gone) in a later poll."""
        with self.lock:
            ok = status is not None and 200 <= status < 300
            lb.op = {'kind': kind if ok else 'wait', 't0': start,
                     't_resp': time.monotonic()}

    def _create(self, start):
        with self.lock:
            self.seq += 1
            name = 'churn-%05d' % self.seq
        status, body = self._request('create', 'POST', LB_PATH,
                                     create_body(name, MULTILB))
        t_resp = time.monotonic()
        with self.lock:
            self.creating -= 1
            if status not in (201, 202):
                return
            graph = body['loadbalancer']
            listeners = graph.get('listeners') or [{}]
            pools = graph.get('pools') or [{}]
            lb = LB(graph['id'], listeners[0].get('id'), pools[0].get('id'))
            lb.op = {'kind': 'create', 't0': start, 't_resp': t_resp}
            self.lbs[lb.id] = lb
            self.unknown.pop(lb.id, None)

    def _members(self, lb, start):
        addresses = self.rng.sample(range(10, 250), self.rng.randint(1, 5))
        body = {'members': [{'address': '192.0.2.%d' % a,
                             'protocol_port': 8080} for a in addresses]}
        status, _ = self._request('members', 'PUT', '/v2/lbaas/pools/%s/'
                                  'members' % lb.pool, body)
        self._done(lb, 'members', start, status)

    def _l7(self, lb, start):
        # A policy is created without its rule, the rule comes with the
        # next L7 change: Octavia 19 answers 500 to a POST of a policy
        # with "rules" ("'dict' object has no attribute
        # '_sa_instance_state'", in its l7policy repository's create).
        if lb.policy is None:
            kind = 'l7 create'
            status, body = self._request(kind, 'POST', '/v2/lbaas/l7policies',
                                         {'l7policy': {
                                             'listener_id': lb.listener,
                                             'name': 'churn',
                                             'action': 'REJECT',
                                             'position': 1}})
            if status == 201:
                with self.lock:
                    lb.policy = body['l7policy']['id']
                    lb.action, lb.rule = 'REJECT', None
        elif lb.rule is None:
            kind = 'l7 rule create'
            status, body = self._request(
                kind, 'POST', '/v2/lbaas/l7policies/%s/rules' % lb.policy,
                {'rule': {'type': 'PATH', 'compare_type': 'STARTS_WITH',
                          'value': '/blocked'}})
            if status == 201:
                with self.lock:
                    lb.rule = body['rule']['id']
        else:
            kind = self.rng.choice(('l7 update', 'l7 rule update',
                                    'l7 delete'))
            path = '/v2/lbaas/l7policies/%s' % lb.policy
            if kind == 'l7 update':
                action = ('REDIRECT_TO_URL' if lb.action == 'REJECT'
                          else 'REJECT')
                change = {'action': action}
                if action == 'REDIRECT_TO_URL':
                    change['redirect_url'] = 'http://example.org/moved'
                status, _ = self._request(kind, 'PUT', path,
                                          {'l7policy': change})
                if status is not None and 200 <= status < 300:
                    with self.lock:
                        lb.action = action
            elif kind == 'l7 rule update':
                status, _ = self._request(
                    kind, 'PUT', '%s/rules/%s' % (path, lb.rule),
                    {'rule': {'value': '/p%d' % self.rng.randint(0, 999)}})
            else:
                status, _ = self._request(kind, 'DELETE', path, None)
                if status is not None and 200 <= status < 300:
                    with self.lock:
                        lb.policy = lb.rule = lb.action = None
        self._done(lb, kind, start, status)

    def _delete(self, lb, start):
        status, _ = self._request('delete', 'DELETE', '%s/%s?cascade=true' % (
            LB_PATH, lb.id), None)
        self._done(lb, 'delete', start, status)

    # -- the schedule -----------------------------------------------------

    def schedule(self, pool, rate, mix, until, stop=None):
        """One operation every 1/rate s until ``until`` (monotonic) or
        ``stop()``; returns the slots used."""
        interval = 1.0 / rate
        t0 = time.monotonic()
        n = 0
        while True:
            due = t0 + n * interval
            if due >= until or (stop is not None and stop()):
                return n
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n += 1
            chosen = self.choose(mix)
            if chosen is not None:
                pool.submit(self.run_op, chosen[0], chosen[1], due)

    def pending(self):
        """Ids of LBs listed PENDING_* by the last poll, and whether the
        client still waits for an answer or an ACTIVE."""
        with self.lock:
            listed = [i for i, s in self.statuses.items() if s in PENDING]
            waiting = sum(1 for lb in self.lbs.values() if lb.op) + \
                self.creating
        return listed, waiting

    def settle(self, timeout):
        """Wait until the last poll lists no PENDING_* and the client
        waits for nothing; (seconds waited, stuck ids)."""
        t0 = time.monotonic()
        first = len(self.polls)
        while True:
            listed, waiting = self.pending()
            if not listed and not waiting and len(self.polls) > first + 1:
                return time.monotonic() - t0, []
            if time.monotonic() - t0 > timeout:
                return time.monotonic() - t0, listed
            time.sleep(self.args.poll)


# --------------------------------------------------------------------------
# The end: both sides counted
# --------------------------------------------------------------------------

def octavia_objects(api):
    """{kind: {id: (lb id, provisioning status)}} of provider multilb,
    from the API's lists (DELETED left out)."""
    objs = {k: {} for k in OBJECTS}
    for lb in list_all(api, '%s?provider=%s' % (LB_PATH, MULTILB),
                       'loadbalancers'):
        if lb['provisioning_status'] != 'DELETED':
            objs['loadbalancer'][lb['id']] = (lb['id'],
                                              lb['provisioning_status'])
    lbs = objs['loadbalancer']

    def owner(item):
        found = item.get('loadbalancers') or [{}]
        return found[0].get('id')

    for kind, path, key in (('listener', '/v2/lbaas/listeners', 'listeners'),
                            ('pool', '/v2/lbaas/pools', 'pools')):
        for item in list_all(api, path, key):
            if owner(item) in lbs:
                objs[kind][item['id']] = (owner(item),
                                          item['provisioning_status'])
    pools, listeners = objs['pool'], objs['listener']
    for item in list_all(api, '/v2/lbaas/healthmonitors', 'healthmonitors'):
        pool = (item.get('pools') or [{}])[0].get('id')
        if pool in pools:
            objs['healthmonitor'][item['id']] = (
                pools[pool][0], item['provisioning_status'])
    for item in list_all(api, '/v2/lbaas/l7policies', 'l7policies'):
        if item.get('listener_id') in listeners:
            objs['l7policy'][item['id']] = (
                listeners[item['listener_id']][0],
                item['provisioning_status'])
    for pool_id, (lb_id, _st) in pools.items():
        for item in list_all(api, '/v2/lbaas/pools/%s/members' % pool_id,
                             'members'):
            objs['member'][item['id']] = (lb_id, item['provisioning_status'])
    for policy_id, (lb_id, _st) in list(objs['l7policy'].items()):
        for item in list_all(api, '/v2/lbaas/l7policies/%s/rules' %
                             policy_id, 'rules'):
            objs['l7rule'][item['id']] = (lb_id, item['provisioning_status'])
    return objs


def appliance_objects(root):
    """{kind: {id: lb id}} of every graph in the fake appliances' files,
    and {lb id: [clusters]} (a load balancer held twice shows)."""
    objs = {k: {} for k in OBJECTS}
    where = collections.defaultdict(list)
    unreadable = []
    if not os.path.isdir(root):
        return objs, where, unreadable
    for cluster in sorted(os.listdir(root)):
        folder = os.path.join(root, cluster)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if not name.endswith('.json'):
                continue
            try:
                with open(os.path.join(folder, name)) as f:
                    graph = json.load(f)
            except (OSError, ValueError):
                unreadable.append('%s/%s' % (cluster, name))
                continue
            lb_id = graph.get('loadbalancer_id') or name[:-5]
            where[lb_id].append(cluster)
            objs['loadbalancer'][lb_id] = lb_id
            for listener in graph.get('listeners') or []:
                objs['listener'][listener['listener_id']] = lb_id
                for policy in listener.get('l7policies') or []:
                    objs['l7policy'][policy['l7policy_id']] = lb_id
                    for rule in policy.get('rules') or []:
                        objs['l7rule'][rule['l7rule_id']] = lb_id
            for pool in graph.get('pools') or []:
                objs['pool'][pool['pool_id']] = lb_id
                for member in pool.get('members') or []:
                    objs['member'][member['member_id']] = lb_id
                monitor = pool.get('healthmonitor')
                if monitor:
                    objs['healthmonitor'][monitor['healthmonitor_id']] = lb_id
    return objs, where, unreadable


def compare(api, root):
    octavia = octavia_objects(api)
    appliance, where, unreadable = appliance_objects(root)
    diff = {}
    for kind in OBJECTS:
        o, a = set(octavia[kind]), set(appliance[kind])
        diff[kind] = (sorted(o - a), sorted(a - o))
    equal = (not unreadable and all(not x and not y for x, y in diff.values())
             and all(len(c) == 1 for c in where.values()))
    return {'octavia': octavia, 'appliance': appliance, 'diff': diff,
            'where': where, 'unreadable': unreadable, 'equal': equal}


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def run(args, workdir, out):
    poll_interval = (floor.default_poll_interval()
                     if args.poll_interval is None else args.poll_interval)
    os.environ['PYTHONPATH'] = os.pathsep.join(
        [floor.write_stub_package(workdir)] +
        [p for p in os.environ.get('PYTHONPATH', '').split(os.pathsep) if p])
    agent = floor.AGENT if args.trace else AGENT
    trace = os.path.join(workdir, 'calls.jsonl')
    if args.trace:
        os.environ[floor.TRACE_ENV] = trace
    else:
        os.environ.pop(floor.TRACE_ENV, None)
    os.environ[burst.THREADS_ENV] = str(args.stub_threads)
    os.environ.pop(burst.SOCKETS_ENV, None)
    clusters = {'churn%02d' % i: args.capacity for i in range(args.clusters)}
    rng = random.Random(args.seed)
    res = {'poll_interval': poll_interval, 'load_start': base.loadavg(),
           'loads': []}
    out('load avg at start: %s' % res['load_start'])
    etcd = db = stack = None
    sampler = None
    try:
        out('starting etcd, MariaDB, %d Octavia API(s) + driver agent in '
            '%s ...' % (args.api_count, workdir))
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
                             provider_agents=(agent,), extra_conf=conf,
                             api_count=args.api_count).start()
        out('stack ready in %.1fs: %s; multilb agent pid %s' % (
            time.perf_counter() - t, ', '.join(stack.api_urls),
            agent_pid(stack, agent)))
        api = Api(stack.api_urls)
        poll_api = Api(stack.api_urls[:1])
        status, body, _r = api.call('GET', '/v2/lbaas/providers')
        names = {p['name'] for p in (body or {}).get('providers', [])}
        if status != 200 or not {MULTILB, STUB} <= names:
            raise base.BenchError('providers: HTTP %s %s' % (status, body))
        # The first request of each API process loads the providers.
        for provider in (STUB, MULTILB):
            for i in range(args.api_count):
                lb_id, _t0, t1 = floor.create(
                    api.clients[i], 'warm-%s-%d' % (provider, i), provider)
                base.wait_status(api.clients[i], lb_id, t1, 0.2, 300)
                if provider == MULTILB:
                    base.delete_and_wait(api.clients[i], lb_id, 0.2, 300)
        res['loads'].append(('warm-up done', base.loadavg()))

        # Phase 1: the stub's sustained create rate.
        if args.baseline > 0:
            res['baseline'] = stub_baseline(args, api, out)
            out('  stub: %d creates ACTIVE, %.2f/s sustained' % (
                res['baseline']['completed'], res['baseline']['rate']))
            res['loads'].append(('baseline done', base.loadavg()))
        stub_rate = res['baseline']['rate'] if 'baseline' in res else None
        if args.rate is not None:
            rate = args.rate
        elif stub_rate:
            rate = min(5.0, STUB_SHARE * stub_rate)
        else:
            raise base.BenchError('no stub rate measured and no --rate')
        res['rate'] = rate
        out('churn rate: %.2f ops/s (%s)' % (
            rate, '--rate' if args.rate is not None
            else 'min(5, %.1f x stub %.2f/s)' % (STUB_SHARE, stub_rate)))

        # Phase 2: fill.
        churn = Churn(args, api, poll_api, rng, out)
        churn.start_polls()
        pool = concurrent.futures.ThreadPoolExecutor(args.clients)
        t_fill = time.monotonic()
        out('fill: creates at %.2f/s up to %d multilb load balancers ...' % (
            rate, args.population))
        churn.schedule(pool, rate, {'create': 1}, float('inf'),
                       stop=lambda: churn.live() >= args.population)
        waited, stuck = churn.settle(args.settle_timeout)
        res['fill'] = {'seconds': time.monotonic() - t_fill,
                       'stuck': stuck, 'latency':
                           list(churn.latency['create'])}
        out('  %d load balancers in %.1fs (settled after %.1fs)%s' % (
            len(churn.lbs), res['fill']['seconds'], waited,
            '; STILL PENDING: %d' % len(stuck) if stuck else ''))
        if stuck:
            raise base.BenchError('fill: %d load balancers still pending '
                                  'after %gs: %s' % (
                                      len(stuck), args.settle_timeout,
                                      ' '.join(stuck[:10])))
        # The figures of the churn only.
        fill_sent = dict(churn.sent)
        churn.latency.clear()
        churn.sent.clear()
        churn.accepted.clear()
        churn.lags.clear()
        churn.timeline.clear()
        churn.late = 0
        churn.phase = 'churn'

        # Phase 3: churn.
        sampler = Sampler(stack, agent, churn, args.sample)
        res['rss_start'] = sampler.sample()
        sampler.start()
        res['population_start'] = len(churn.lbs)
        out('churn: %g min at %.2f ops/s, mix %s; agent RSS %s kB, load '
            'avg %s' % (args.duration, rate, ' '.join(
                '%s=%g' % kv for kv in args.mix.items()),
                res['rss_start'][2], res['rss_start'][4]))
        t_churn = time.monotonic()
        res['t_churn'] = t_churn
        res['wall_churn'] = time.time()
        slots = churn.schedule(pool, rate, args.mix,
                               t_churn + args.duration * 60.0)
        pool.shutdown(wait=True)
        res['churn_seconds'] = time.monotonic() - t_churn
        res['slots'] = slots
        res['loads'].append(('churn done', base.loadavg()))
        out('  %d slots in %.1fs; settling (at most %gs) ...' % (
            slots, res['churn_seconds'], args.settle_timeout))

        # Phase 4: the end.
        waited, stuck = churn.settle(args.settle_timeout)
        res['settle'] = (waited, stuck)
        res['wall_settled'] = time.time()
        churn.stop_polls()
        sampler.stopping.set()
        sampler.join()
        res['rss_end'] = sampler.sample()
        out('  settled after %.1fs; counting both sides ...' % waited)
        cmp = compare(poll_api, os.path.join(workdir, 'appliance'))
        tries = 0
        while not cmp['equal'] and tries < args.recheck:
            tries += 1
            time.sleep(5)
            cmp = compare(poll_api, os.path.join(workdir, 'appliance'))
        cmp['rechecks'] = tries
        res['compare'] = cmp
        res['churn'] = churn
        res['fill_sent'] = fill_sent
        res['samples'] = sampler.samples
        res['load_end'] = base.loadavg()
        if args.trace:
            time.sleep(1.0)      # a call's record is written on return
            res['calls'] = floor.read_trace(trace)
        res['agent_log'] = os.path.join(stack.log_dir,
                                        'octavia-driver-agent.log')
        return res
    finally:
        if sampler is not None:
            sampler.stopping.set()
        base.stop_all([stack, db, etcd], out)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------

def _mb(kb):
    return '%.1f MB' % (kb / 1024.0) if kb else 'n/a'


def _row(label, values):
    if not values:
        return '%-44s    0  (n/a)' % label
    return base.row(label, values)


def _header(args, res, out):
    churn = res['churn']
    out('')
    out('=' * 78)
    out('churn: %g min of mixed operations on multilb, %d fake clusters '
        '(issue 14)' % (args.duration, args.clusters))
    out('=' * 78)
    for line in base.machine_info():
        out(line)
    out('octavia:   %s, %d API process(es) (wsgiref), 1 driver agent with '
        'the multilb agent' % (base.octavia_version(), args.api_count))
    out('multilb:   fake backend, %d clusters x max_loadbalancers %d, etcd '
        'store+coordination, poll_interval %gs%s' % (
            args.clusters, args.capacity, res['poll_interval'],
            ' (default)' if args.poll_interval is None else ''))
    out('client:    %d threads over the API processes, one list GET per '
        '%gs (p50 %.0f ms), seed %s' % (
            args.clients, args.poll,
            base.percentile(churn.polls, 50) * 1000, args.seed))
    out('')
    b = res.get('baseline')
    if b:
        out('baseline (%s, full-graph creates only: the stub implements '
            'nothing else):' % STUB)
        out('  closed loop, %d in flight, %gs: %d ACTIVE, %d in the last '
            '%.0fs -> %.2f creates/s sustained' % (
                args.baseline_inflight, args.baseline, b['completed'],
                b['in_window'], b['window'], b['rate']))
        out(_row('  stub POST round trip', b['posts']))
        out(_row('  stub POST -> ACTIVE seen', b['latencies']))
        if b['errors']:
            out('  errors: %s' % dict(b['errors']))
        out('  load avg %s -> %s' % b['load'])
    else:
        out('baseline: not measured (--baseline 0)')
    out('churn rate: %.2f ops/s%s' % (res['rate'], ' (--rate)'
                                      if args.rate is not None else
                                      ' = min(5, %.1f x the stub\'s rate)'
                                      % STUB_SHARE))


def _operations(args, res, out):
    churn, cmp, fill = res['churn'], res['compare'], res['fill']
    out('')
    out('fill: %d multilb LBs created in %.1fs (%s), then all ACTIVE' % (
        res['population_start'], fill['seconds'],
        ', '.join('%s %d' % kv for kv in sorted(res['fill_sent'].items()))))
    out('churn: %d slots in %.1fs (%.2f/s asked); population %d at the '
        'start, %d at the end (target %d +- %d)' % (
            res['slots'], res['churn_seconds'], res['rate'],
            res['population_start'], len(cmp['octavia']['loadbalancer']),
            args.population, args.slack))
    lags = churn.lags
    out('  sent late (> %gs after the slot): %d of %d; lag p50 %.0f ms, '
        'p99 %.0f ms, max %.0f ms' % (
            LATE, churn.late, len(lags),
            base.percentile(lags, 50) * 1000 if lags else 0,
            base.percentile(lags, 99) * 1000 if lags else 0,
            max(lags) * 1000 if lags else 0))
    kinds = sorted(set(churn.sent) | set(churn.conflicts) |
                   {k for k, _ in churn.api_errors})
    out('')
    out('%-18s %7s %9s %9s %11s' % ('operation', 'sent', 'accepted',
                                    '409', 'other error'))
    for kind in kinds:
        other = sum(n for (k, _w), n in churn.api_errors.items() if k == kind)
        out('%-18s %7d %9d %9d %11d' % (
            kind, churn.sent[kind], churn.accepted[kind],
            churn.conflicts[kind], other))
    out('%-18s %7d %9d %9d %11d' % (
        'all', sum(churn.sent.values()), sum(churn.accepted.values()),
        sum(churn.conflicts.values()), sum(churn.api_errors.values())))
    if churn.skipped:
        out('slots skipped (no ACTIVE load balancer to operate on): %s' % (
            ', '.join('%s %d' % kv for kv in sorted(churn.skipped.items()))))
    if churn.api_errors:
        out('API errors by kind: %s' % ', '.join(
            '%s: %s x%d' % (k, w, n)
            for (k, w), n in sorted(churn.api_errors.items())))
        for line in churn.error_samples:
            out('  e.g. %s' % line)
    out('')
    out('%-44s %4s %9s %9s %9s %9s %9s' % (
        'operation answered -> ACTIVE seen (ms)', 'n', 'p50', 'p99', 'min',
        'max', 'mean'))
    for kind in sorted(churn.latency):
        label = ('%s -> gone' % kind if kind == 'delete'
                 else '%s -> ACTIVE' % kind)
        out(_row('  ' + label, churn.latency[kind]))
    out(_row('  (fill) create -> ACTIVE', fill['latency']))
    out('  (from the operation\'s start to the first list GET, started '
        'after its answer,')
    out('  showing ACTIVE / not listing it: an upper bound by one poll '
        'period + one GET)')
    by_minute = collections.defaultdict(list)
    for t0, seconds in churn.timeline:
        by_minute[int((t0 - res['t_churn']) // 60)].append(seconds)
    out('every operation -> ACTIVE / gone by the minute it started in '
        '(does multilb keep pace?):')
    for minute in sorted(by_minute):
        out(_row('  minute %d' % (minute + 1), by_minute[minute]))


def _memory(args, res, out, problems):
    out('')
    out('multilb agent RSS (VmRSS; the driver agent\'s own in brackets), '
        'load average:')
    start, end = res['rss_start'], res['rss_end']
    series = res['samples']       # start and end included
    rss = [s[2] for s in series if s[2]]
    out('  start (after the fill): %s [%s], pid %s, load %s' % (
        _mb(start[2]), _mb(start[3]), start[1], start[4]))
    out('  end (after settling):   %s [%s], pid %s, load %s' % (
        _mb(end[2]), _mb(end[3]), end[1], end[4]))
    if rss:
        out('  min %s, max %s, end - start %+.1f MB' % (
            _mb(min(rss)), _mb(max(rss)),
            ((end[2] or 0) - (start[2] or 0)) / 1024.0))
    pids = {s[1] for s in series}
    if len(pids) != 1:
        out('  THE AGENT PROCESS CHANGED: pids %s' % sorted(
            p for p in pids if p) + (' (and none at times)'
                                     if None in pids else ''))
        problems.append('agent process changed')
    _memory_parts(series, out)
    out('  series (s since the start, RSS, driver agent RSS, load avg, '
        'LBs listed PENDING_*,')
    out('  operations waiting for an answer or ACTIVE, the agent\'s '
        'threads, MB in %s):' % '/'.join(MEMORY_PARTS))
    for s in series:
        parts = s[8] if len(s) > 8 and s[8] else None
        out('    %7.0f  %10s  %10s  %-17s %4d %4d %5s  %s' % (
            s[0], _mb(s[2]), _mb(s[3]), s[4], s[5], s[6],
            s[7] if len(s) > 7 and s[7] is not None else '-',
            '/'.join('%.1f' % (parts[k] / 1024.0) for k in MEMORY_PARTS)
            if parts else '-'))
    out('load avg: %s (start), %s, %s (end)' % (
        res['load_start'], ', '.join('%s %s' % kv for kv in res['loads']),
        res['load_end']))


def _memory_parts(series, out):
    """The agent's RSS growth by kind of memory over the whole churn and
    over its second half: thread stacks and malloc arenas grow with the
    job pools up to their bound (clusters x workers_per_cluster); heap
    and anon growing while the thread count holds would be a leak."""
    rows = [s for s in series if len(s) > 8 and s[8] and s[7]]
    if len(rows) < 2:
        return
    first, last = rows[0], rows[-1]
    middle = min(rows, key=lambda s: abs(s[0] - (first[0] + last[0]) / 2))
    for label, a, b in (('whole run', first, last),
                        ('second half', middle, last)):
        out('  %-12s %5.0f -> %5.0f s: RSS %+.1f MB, threads %d -> %d; %s'
            % (label, a[0], b[0], (b[2] - a[2]) / 1024.0, a[7], b[7],
               ', '.join('%s %+.1f' % (k, (b[8][k] - a[8][k]) / 1024.0)
                         for k in MEMORY_PARTS)))


def _calls(args, res, out):
    """--trace: the DriverLibrary calls from the churn's start until
    settled, by process and kind."""
    if 'calls' not in res:
        return
    start, end = res['wall_churn'], res['wall_settled']
    span = max(end - start, 1e-9)
    calls = [c for c in res['calls'] if start <= c['t0'] <= end]
    churn = res['churn']
    out('')
    out('DriverLibrary calls from the churn\'s start until settled (%.0fs; '
        'calls.jsonl):' % span)
    out('%-44s %4s %9s %9s %9s %9s %9s' % (
        '  call duration (ms)', 'n', 'p50', 'p99', 'min', 'max', 'mean'))
    groups = collections.defaultdict(list)
    for c in calls:
        groups[(c['who'], burst._kind(c))].append(c)
    for (who, kind), found in sorted(groups.items()):
        failed = sum(1 for c in found if c.get('error'))
        out(_row('  %s %s%s' % (who, kind, ' (%d failed)' % failed
                                if failed else ''),
                 [c['t1'] - c['t0'] for c in found]))
    mine = [c for c in calls if c['who'] == 'multilb']
    ops = sum(churn.accepted.values())
    out('  multilb: %d calls, %.2f/s, %.2f per accepted operation (%d); '
        '%d failed' % (len(mine), len(mine) / span, len(mine) / max(ops, 1),
                       ops, sum(1 for c in mine if c.get('error'))))


def _end(args, res, out, problems):
    churn, cmp = res['churn'], res['compare']
    out('')
    waited, stuck = res['settle']
    out('end: settled after %.1fs (timeout %gs)' % (
        waited, args.settle_timeout))
    out('  stuck PENDING_*: %d%s' % (len(stuck), ' ' + ' '.join(stuck)
                                     if stuck else ''))
    if stuck:
        problems.append('%d stuck PENDING_*' % len(stuck))
    errors = {kind: sorted(i for i, (_lb, st) in objs.items()
                           if st == 'ERROR')
              for kind, objs in cmp['octavia'].items()}
    n_errors = sum(len(v) for v in errors.values())
    out('  ERROR now: %d%s' % (n_errors, ''.join(
        '; %s %d (%s)' % (k, len(v), ' '.join(v[:5]))
        for k, v in errors.items() if v)))
    if n_errors:
        problems.append('%d objects in ERROR' % n_errors)
    if churn.error_lbs:
        out('  load balancers seen ERROR during the run: %d (%s)' % (
            len(churn.error_lbs), ', '.join(
                '%s after %s' % kv
                for kv in sorted(churn.error_lbs.items())[:10])))
    if churn.vanished:
        out('  load balancers gone without a delete of ours: %d (%s)' % (
            len(churn.vanished), ' '.join(churn.vanished[:10])))
        problems.append('%d load balancers vanished' % len(churn.vanished))
    if churn.adopted:
        out('  load balancers listed but never answered to us (adopted): '
            '%d' % len(churn.adopted))
    if churn.poll_failures:
        out('  list polls that failed: %d' % churn.poll_failures)


def _sides(args, res, out, problems):
    cmp = res['compare']
    out('')
    out('objects of provider multilb, Octavia (API) vs the fake appliances '
        '(files):')
    out('  %-14s %8s %10s %14s %16s' % (
        '', 'Octavia', 'appliance', 'Octavia only', 'appliance only'))
    for kind in OBJECTS:
        only_o, only_a = cmp['diff'][kind]
        out('  %-14s %8d %10d %14d %16d' % (
            kind, len(cmp['octavia'][kind]), len(cmp['appliance'][kind]),
            len(only_o), len(only_a)))
    lb_o, lb_a = cmp['diff']['loadbalancer']
    if lb_o:
        out('  load balancers in Octavia only: %s' % ' '.join(lb_o[:20]))
    if lb_a:
        out('  load balancers on an appliance only: %s' % ' '.join(
            '%s (%s)' % (i, ','.join(cmp['where'][i])) for i in lb_a[:20]))
    for kind in OBJECTS[1:]:
        only_o, only_a = cmp['diff'][kind]
        for label, ids, side in (('Octavia only', only_o, cmp['octavia']),
                                 ('appliance only', only_a,
                                  cmp['appliance'])):
            if ids:
                out('  %s %s: %s' % (kind, label, ', '.join(
                    '%s (lb %s)' % (i, side[kind][i][0] if isinstance(
                        side[kind][i], tuple) else side[kind][i])
                    for i in ids[:10])))
    twice = {i: c for i, c in cmp['where'].items() if len(c) > 1}
    if twice:
        out('  load balancers on more than one cluster: %s' % ', '.join(
            '%s (%s)' % (i, ','.join(c)) for i, c in sorted(twice.items())))
    if cmp['unreadable']:
        out('  unreadable appliance files: %s' % ' '.join(
            cmp['unreadable']))
    out('  appliance == Octavia: %s%s' % (
        'yes' if cmp['equal'] else 'NO',
        ' (after %d recheck(s), 5 s apart)' % cmp['rechecks']
        if cmp['rechecks'] else ''))
    if not cmp['equal']:
        problems.append('appliance != Octavia')


def report(args, res, out):
    """Print the figures; True if the end state is right."""
    problems = []
    _header(args, res, out)
    _operations(args, res, out)
    _calls(args, res, out)
    _memory(args, res, out, problems)
    _end(args, res, out, problems)
    _sides(args, res, out, problems)
    out('')
    out('result: %s' % ('OK' if not problems else 'FAILED: ' +
                        '; '.join(problems)))
    out('(the agent log: %s)' % res['agent_log'])
    return not problems


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def mix(value):
    found = {}
    for part in value.split(','):
        name, _sep, weight = part.partition('=')
        name = name.strip()
        if name not in KINDS:
            raise argparse.ArgumentTypeError(
                'unknown operation %r (one of %s)' % (name, ', '.join(KINDS)))
        try:
            found[name] = float(weight)
        except ValueError:
            raise argparse.ArgumentTypeError('weight of %s: %r' % (
                name, weight))
        if found[name] < 0:
            raise argparse.ArgumentTypeError('negative weight of %s' % name)
    if not any(found.values()):
        raise argparse.ArgumentTypeError('every weight is 0')
    return found


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--duration', type=float, default=30.0,
                   help='minutes of churn (default 30)')
    p.add_argument('--rate', type=float, default=None,
                   help='operations per second (default: min(5, %.1f x the '
                        'stub\'s sustained create rate))' % STUB_SHARE)
    p.add_argument('--clusters', type=int, default=20,
                   help='fake clusters (default 20)')
    p.add_argument('--capacity', type=int, default=100000,
                   help='max_loadbalancers of each cluster (default 100000)')
    p.add_argument('--population', type=int, default=100,
                   help='multilb load balancers kept around (default 100)')
    p.add_argument('--mix', type=mix,
                   default=mix('create=1,members=2,l7=2,delete=1'),
                   help='operation weights (default '
                        'create=1,members=2,l7=2,delete=1)')
    p.add_argument('--clients', type=int, default=8,
                   help='client threads sending the operations (default 8)')
    p.add_argument('--api-count', type=int, default=2,
                   help='Octavia API processes (default 2)')
    p.add_argument('--stub-threads', type=int, default=8,
                   help='stub worker threads per API process (default 8)')
    p.add_argument('--baseline', type=float, default=90.0,
                   help='seconds of the stub\'s closed loop (default 90; 0: '
                        'not measured, --rate needed)')
    p.add_argument('--baseline-inflight', type=int, default=16,
                   help='stub creates in flight in the baseline (default 16)')
    p.add_argument('--poll', type=float, default=0.5,
                   help='seconds between two list GETs (default 0.5)')
    p.add_argument('--poll-interval', type=float, default=None,
                   help="multilb's [multilb] poll_interval (default: "
                        "multilb's own, %g)" % floor.default_poll_interval())
    p.add_argument('--sample', type=float, default=60.0,
                   help='seconds between two RSS / load samples (default 60)')
    p.add_argument('--settle-timeout', type=float, default=300.0,
                   help='seconds to wait for no PENDING_* after the fill and '
                        'at the end (default 300)')
    p.add_argument('--recheck', type=int, default=6,
                   help='if the two sides differ, compare again up to this '
                        'many times, 5 s apart (default 6)')
    p.add_argument('--trace', action='store_true',
                   help='run multilb\'s agent through latency_floor.py\'s '
                        'multilb_traced entry point and print its '
                        'DriverLibrary calls (calls.jsonl)')
    p.add_argument('--seed', type=int, default=14,
                   help='random seed of the operation mix (default 14)')
    p.add_argument('--workdir',
                   help='work directory for the stack (must not exist or be '
                        'empty; default: a new temporary directory)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (logs, appliance/) at the '
                        'end; it is always kept when the run fails')
    args = p.parse_args(argv)
    if min(args.clusters, args.capacity, args.population, args.clients,
           args.api_count, args.stub_threads, args.baseline_inflight) < 1:
        p.error('--clusters, --capacity, --population, --clients, '
                '--api-count, --stub-threads and --baseline-inflight must be '
                '>= 1')
    if args.duration <= 0 or args.poll <= 0 or args.sample <= 0:
        p.error('--duration, --poll and --sample must be > 0')
    if args.rate is not None and args.rate <= 0:
        p.error('--rate must be > 0')
    if args.baseline < 0 or (args.baseline == 0 and args.rate is None):
        p.error('--baseline must be >= 0; with 0, give --rate')
    if args.poll_interval is not None and args.poll_interval < 0.05:
        p.error('--poll-interval must be >= 0.05')
    args.slack = max(2, args.population // 10)
    return args


def main(argv=None):
    """As base.run_main, but the exit status says whether the end state
    was right (1: stuck, ERROR or appliance != Octavia), and the work
    directory is kept then."""
    args = parse_args(argv)
    out = print

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    workdir = base.make_workdir(args.workdir)
    ok = False
    try:
        res = run(args, workdir, out)
        ok = report(args, res, out)
    finally:
        if args.keep or not ok:
            out('work directory kept: %s' % workdir)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == '__main__':
    base.entry(main)
