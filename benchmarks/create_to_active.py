#!/usr/bin/env python3
"""Create -> ACTIVE latency of a full-graph load balancer: multilb (``fake``
backend) against Octavia's in-tree no-op provider (``noop_driver``).

A benchmark script, not a test: it prints figures and asserts nothing about
times.  Run it from the repository root with the Python of the venv that has
Octavia, openstacksdk and multilb installed::

    python benchmarks/create_to_active.py --count 30

One real stack (tools/localstack) serves both providers: etcd (multilb's
store and coordination), MariaDB, one Octavia API and the driver agent with
the multilb provider agent, ``enabled_provider_drivers = multilb,noop_driver``.
Each request is the same single POST of a full graph; the provider is chosen
per request in the body.  Requests alternate multilb, noop, multilb, noop...
so that machine noise hits both alike.

What is measured (wall clock of this client, ``time.perf_counter``):

* POST: from just before the request is sent to the moment its response
  (201) is read -- validation, the DB writes of the whole graph and the
  provider's synchronous ``loadbalancer_create`` inside the API call.
* multilb POST -> ACTIVE: from the same start to the first poll (every
  ``--poll`` s) that shows ``provisioning_status = ACTIVE``.  Upper bound:
  the transition happened at most one poll period + one GET before it.
* agent overhead: per request, (POST -> ACTIVE) - POST.

Octavia's ``noop_driver`` never reports statuses -- its load balancers stay
PENDING_CREATE forever -- so it has no create -> ACTIVE figure; it is the
baseline for the POST only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.error
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.functional.fleet import VIP_SUBNET, multilb_conf  # noqa: E402
# The functional tests' full graph: listener HTTP:80, default pool
# (ROUND_ROBIN, 2 members, HTTP health monitor), a REJECT L7 policy + rule.
from tests.functional.helpers import FULL_GRAPH  # noqa: E402
from tools.localstack import (  # noqa: E402
    EtcdServer, MariaDBServer, OctaviaStack)

MULTILB = 'multilb'
NOOP = 'noop_driver'
PROJECT = 'proj-bench'
LB_PATH = '/v2/lbaas/loadbalancers'


# multilb/jobs.py logs, after recording the outcome and before reporting
# the statuses to Octavia:
#   "Load balancer <id> on cluster <c>: create loadbalancer <id> applied in
#   0.005s"
# Used only for the optional breakdown; if the wording changes the breakdown
# is left out.
APPLIED_RE = re.compile(
    r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ INFO multilb\.jobs '
    r'.*Load balancer (\S+) on cluster \S+: create loadbalancer \S+ '
    r'applied in ([0-9.]+)s')

# Octavia's API logs "Sending create Load Balancer <id> to provider multilb"
# just before calling the provider, and multilb's driver logs "Placed load
# balancer <id> ..." when its placement is recorded: the difference is the
# provider's synchronous work inside the POST.
_STAMP = r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) \d+ INFO '
SENDING_RE = re.compile(
    _STAMP + r'octavia\.api\.v2\.controllers\.load_balancer .*Sending '
    r'create Load Balancer (\S+) to provider multilb')
PLACED_RE = re.compile(
    _STAMP + r'multilb\.driver .*Placed load balancer (\S+) ')


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# A tiny Octavia client: urllib, no proxy, X-Project-Id (noauth).
# Lower overhead and noise than openstacksdk/keystoneauth for this purpose.
# --------------------------------------------------------------------------

class Client:
    def __init__(self, api_url, timeout=30):
        self.api = api_url.rstrip('/')
        self.timeout = timeout
        # Never go through an http(s)_proxy from the environment.
        self._opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}))
        self.get_times = []  # seconds per status GET (poll resolution)

    def request(self, method, path, data=None):
        """(status, parsed JSON or None); HTTP errors are returned too."""
        req = urllib.request.Request(
            self.api + path, data=data, method=method,
            headers={'X-Project-Id': PROJECT, 'Accept': 'application/json',
                     'Content-Type': 'application/json'})
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode('utf-8', 'replace')
        return status, body

    def lb_status(self, lb_id):
        """provisioning_status of ``lb_id`` ('GONE' on 404)."""
        start = time.perf_counter()
        status, body = self.request(
            'GET', '%s/%s?fields=provisioning_status' % (LB_PATH, lb_id))
        self.get_times.append(time.perf_counter() - start)
        if status == 404:
            return 'GONE'
        if status != 200:
            raise BenchError('GET %s: HTTP %s %s' % (lb_id, status, body))
        return body['loadbalancer']['provisioning_status']


def lb_body(name, provider):
    return json.dumps({'loadbalancer': {
        'name': name, 'project_id': PROJECT, 'vip_subnet_id': VIP_SUBNET,
        'provider': provider, 'listeners': FULL_GRAPH}}).encode()


def create(client, name, provider):
    """POST one full graph; returns (lb_id, t_start, t_post_done)."""
    data = lb_body(name, provider)  # encoded before the clock starts
    t0 = time.perf_counter()
    status, body = client.request('POST', LB_PATH, data)
    t1 = time.perf_counter()
    if status not in (201, 202):
        raise BenchError('POST %s (%s): HTTP %s %s' % (
            name, provider, status, body))
    lb = body['loadbalancer']
    if lb.get('provider') != provider:
        raise BenchError('asked for provider %s, got %s' % (
            provider, lb.get('provider')))
    return lb['id'], t0, t1


def wait_status(client, lb_id, start, period, timeout, wanted=('ACTIVE',)):
    """Poll every ``period`` s (fixed schedule from ``start``) until the LB
    shows one of ``wanted``; returns (status, time the GET returned)."""
    deadline = start + timeout
    tick = start
    while True:
        state = client.lb_status(lb_id)
        now = time.perf_counter()
        if state in wanted:
            return state, now
        if state == 'ERROR' or (state == 'GONE' and 'GONE' not in wanted):
            raise BenchError('load balancer %s went %s' % (lb_id, state))
        if now > deadline:
            raise BenchError('load balancer %s still %s after %ss' % (
                lb_id, state, timeout))
        tick += period
        while tick <= now:
            tick += period
        time.sleep(tick - now)


def delete_and_wait(client, lb_id, period, timeout):
    """Cascade-delete a multilb LB and wait until it is gone, so that the
    agent is idle again before the next measurement (not timed)."""
    status, body = client.request('DELETE', '%s/%s?cascade=true' % (
        LB_PATH, lb_id))
    if status not in (202, 204):
        raise BenchError('DELETE %s: HTTP %s %s' % (lb_id, status, body))
    wait_status(client, lb_id, time.perf_counter(), period, timeout,
                wanted=('GONE', 'DELETED'))


# --------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------

def percentile(values, q):
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    if not ordered:
        return float('nan')
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def ms(seconds):
    return '%9.1f' % (seconds * 1000.0)


def row(label, values):
    return '%-44s %4d %s %s %s %s %s' % (
        label, len(values), ms(percentile(values, 50)),
        ms(percentile(values, 99)), ms(min(values)), ms(max(values)),
        ms(statistics.fmean(values)))


def machine_info():
    lines = []
    cpus = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        usable = cpus
    model = ''
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    lines.append('machine:   nproc %s (cpu_count %s)%s' % (
        usable, cpus, ', %s' % model if model else ''))
    lines.append('           %s, Python %s' % (
        platform.platform(), platform.python_version()))
    return lines


def loadavg():
    try:
        return '%.2f %.2f %.2f' % os.getloadavg()
    except OSError:  # pragma: no cover
        return 'n/a'


def octavia_version():
    try:
        from importlib import metadata
        return metadata.version('octavia')
    except Exception:  # noqa: B902 - informational only
        return '?'


# --------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------

def stack_arguments(p):
    """The options every stack benchmark has: polling, timeout, workdir."""
    p.add_argument('--poll', type=float, default=0.05,
                   help='seconds between two status GETs (default 0.05)')
    p.add_argument('--poll-interval', type=float, default=0.1,
                   help="multilb's [multilb] poll_interval (default 0.1)")
    p.add_argument('--timeout', type=float, default=60.0,
                   help='seconds to wait for one LB to go ACTIVE / away')
    p.add_argument('--workdir',
                   help='work directory for the stack (must not exist or be '
                        'empty; default: a new temporary directory)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (logs, data) at the end')


def check_polling(p, args):
    if args.poll <= 0 or args.poll_interval < 0.05:
        p.error('--poll must be > 0 and --poll-interval >= 0.05')


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
    p.add_argument('--capacity', type=int, default=100000,
                   help='max_loadbalancers of each fake cluster')
    stack_arguments(p)
    args = p.parse_args(argv)
    if args.count < 1 or args.warmup < 0:
        p.error('--count must be >= 1 and --warmup >= 0')
    check_polling(p, args)
    return args


def make_workdir(path):
    if path is None:
        return tempfile.mkdtemp(prefix='multilb-bench-')
    path = os.path.abspath(path)
    if os.path.exists(path) and os.listdir(path):
        raise SystemExit('--workdir %s exists and is not empty' % path)
    os.makedirs(path, exist_ok=True)
    return path


def run(args, workdir, out):
    clusters = {'bench%d' % i: args.capacity for i in range(args.clusters)}
    etcd = db = stack = None
    try:
        out('starting etcd, MariaDB, Octavia API + driver agent in %s ...'
            % workdir)
        t = time.perf_counter()
        etcd = EtcdServer(workdir).start()
        db = MariaDBServer(workdir).start()
        url = db.create_database('octavia', 'octavia', 'octavia')
        # etcd for multilb's store and coordination, as the functional
        # Fleet does (tests/functional/fleet.py).
        conf = multilb_conf(
            workdir, etcd.store_url + '?prefix=/multilb/', clusters,
            poll_interval=args.poll_interval,
            coordination_url=etcd.store_url + '?timeout=5&lock_timeout=6'
                                              '&membership_timeout=6')
        stack = OctaviaStack(workdir, url, provider='%s,%s' % (MULTILB, NOOP),
                             provider_agents=(MULTILB,),
                             extra_conf=conf).start()
        out('stack ready in %.1fs: %s' % (time.perf_counter() - t,
                                          stack.api_url))
        res = measure(args, Client(stack.api_url), clusters, out)
        res['breakdown'] = breakdown(
            os.path.join(stack.log_dir, 'octavia-api-0.log'),
            os.path.join(stack.log_dir, 'octavia-driver-agent.log'),
            res['walls'])
        return res
    finally:
        stop_all([stack, db, etcd], out)


def measure(args, client, clusters, out):
    status, body = client.request('GET', '/v2/lbaas/providers')
    names = sorted(p['name'] for p in (body or {}).get('providers', []))
    if status != 200 or not {MULTILB, NOOP} <= set(names):
        raise BenchError('providers: HTTP %s %s' % (status, body))

    post = {MULTILB: [], NOOP: []}
    active, overhead = [], []
    walls = {}  # multilb lb_id -> (wall clock of POST done, of ACTIVE seen)
    wall = time.time() - time.perf_counter()  # perf_counter -> epoch
    load_before = loadavg()
    total = args.warmup + args.count
    out('%d warm-up + %d measured requests per provider, interleaved '
        '(%s, %s, ...)' % (args.warmup, args.count, MULTILB, NOOP))
    t_run = time.perf_counter()
    for i in range(total):
        counted = i >= args.warmup
        for provider in (MULTILB, NOOP):
            name = 'bench-%s-%03d' % (provider, i)
            lb_id, t0, t1 = create(client, name, provider)
            if provider == MULTILB:
                _state, t2 = wait_status(client, lb_id, t1, args.poll,
                                         args.timeout)
                if counted:
                    active.append(t2 - t0)
                    overhead.append(t2 - t1)
                    walls[lb_id] = (t1 + wall, t2 + wall)
                # Outside the timed region: leave the agent idle again.
                delete_and_wait(client, lb_id, args.poll, args.timeout)
            # noop_driver LBs stay PENDING_CREATE and cannot be deleted
            # through the API (immutable); the stack is thrown away.
            if counted:
                post[provider].append(t1 - t0)
    elapsed = time.perf_counter() - t_run
    load_after = loadavg()
    return {'post': post, 'active': active, 'overhead': overhead,
            'load': (load_before, load_after), 'elapsed': elapsed,
            'get_times': list(client.get_times), 'clusters': clusters,
            'walls': walls}


def _stamps(path, pattern, wanted):
    """{lb_id: (epoch seconds, match)} of the first line per wanted LB."""
    found = {}
    with open(path, errors='replace') as f:
        for line in f:
            m = pattern.match(line)
            if m and m.group(2) in wanted and m.group(2) not in found:
                found[m.group(2)] = (datetime.datetime.strptime(
                    m.group(1), '%Y-%m-%d %H:%M:%S.%f').timestamp(), m)
    return found


def breakdown(api_log, agent_log, walls):
    """Split the agent overhead with the multilb agent's "applied" log line
    (millisecond timestamps, same clock): {row label: [seconds]}, or None
    if the log does not have one line per measured LB."""
    parts = {}
    try:
        sending = _stamps(api_log, SENDING_RE, walls)
        placed = _stamps(api_log, PLACED_RE, walls)
        applied = _stamps(agent_log, APPLIED_RE, walls)
    except OSError:
        return parts
    if walls and set(sending) == set(placed) == set(walls):
        parts['in_post'] = {
            'multilb provider call inside the POST': [
                placed[i][0] - sending[i][0] for i in walls]}
    if walls and set(applied) == set(walls):
        parts['overhead'] = {
            'POST done -> agent logged "applied"': [
                applied[i][0] - walls[i][0] for i in walls],
            '  of which: apply on the fake appliance': [
                float(applied[i][1].group(3)) for i in walls],
            '"applied" -> ACTIVE seen by the client': [
                walls[i][1] - applied[i][0] for i in walls]}
    return parts


def report(args, res, out):
    post, active, overhead = res['post'], res['active'], res['overhead']
    out('')
    out('=' * 78)
    out('multilb create -> ACTIVE vs Octavia noop_driver (full-graph LB, '
        'single POST)')
    out('=' * 78)
    for line in machine_info():
        out(line)
    out('load avg:  %s (before)  ->  %s (after); run took %.1fs' % (
        res['load'][0], res['load'][1], res['elapsed']))
    out('octavia:   %s, 1 API process (wsgiref), 1 driver agent' %
        octavia_version())
    out('multilb:   fake backend, %d clusters x max_loadbalancers %d, '
        'store+coordination etcd, poll_interval %gs' % (
            len(res['clusters']), args.capacity, args.poll_interval))
    out('graph:     LB + listener HTTP:80 + pool ROUND_ROBIN + 2 members + '
        'HTTP health monitor + L7 policy REJECT + PATH rule')
    out('client:    urllib, one request at a time; status polled every '
        '%gs (GET p50 %.1f ms)' % (
            args.poll, percentile(res['get_times'], 50) * 1000))
    out('samples:   %d per provider after %d warm-up each, interleaved '
        'multilb/noop' % (args.count, args.warmup))
    out('')
    out('%-44s %4s %9s %9s %9s %9s %9s' % (
        'latency (ms)', 'n', 'p50', 'p99', 'min', 'max', 'mean'))
    out('-' * 78)
    out(row('noop_driver  POST (API round trip)', post[NOOP]))
    out(row('multilb      POST (API round trip)', post[MULTILB]))
    out(row('multilb      POST -> ACTIVE', active))
    out(row('multilb      agent overhead (ACTIVE - POST)', overhead))
    out('noop_driver  POST -> ACTIVE                   n/a: never ACTIVE '
        '(see below)')
    parts = res.get('breakdown') or {}
    out('from the Octavia/multilb logs (millisecond timestamps):')
    for key, what in (('in_post', 'API log lines'),
                      ('overhead', 'agent log lines')):
        if key in parts:
            for label, values in parts[key].items():
                out(row('  ' + label, values))
        else:
            out('  (n/a: %s not found)' % what)
    out('')
    base = percentile(post[NOOP], 50)
    r_post = percentile(post[MULTILB], 50) / base
    r_active = percentile(active, 50) / base
    out('ratios (p50 / p50):')
    out('  multilb POST          / noop POST  = %6.2f   extra %+.1f ms' % (
        r_post, (percentile(post[MULTILB], 50) - base) * 1000))
    out('  multilb POST->ACTIVE  / noop POST  = %6.2f   extra %+.1f ms' % (
        r_active, (percentile(active, 50) - base) * 1000))
    out('')
    out('What the figures mean:')
    out('* POST: client-side time of the create request until its 201 is '
        'read: request')
    out('  validation, DB writes of the whole graph and the provider\'s '
        'synchronous')
    out('  loadbalancer_create (multilb: scheduling + atomic reservation '
        'in etcd;')
    out('  noop_driver: nothing) -- inside one Octavia API call.')
    out('* The noop_driver baseline can measure only that POST. It never '
        'reports a')
    out('  status: its LBs stay PENDING_CREATE forever, so there is NO '
        'noop create ->')
    out('  ACTIVE to compare with. "POST->ACTIVE / noop POST" compares '
        'multilb\'s whole')
    out('  create -> ACTIVE with the bare API round trip; it is not a '
        'provider-vs-')
    out('  provider ACTIVE ratio.')
    out('* multilb POST -> ACTIVE: until the first status GET showing '
        'ACTIVE; an upper')
    out('  bound, the status changed at most one poll period (%g s) + one '
        'GET earlier.' % args.poll)
    out('* agent overhead = (POST -> ACTIVE) - POST per request: the '
        'provider agent')
    out('  noticing the work (scan every poll_interval = %g s), reading the '
        'graph from' % args.poll_interval)
    out('  Octavia, applying it on the fake appliance, recording the '
        'outcome in etcd and')
    out('  reporting the statuses, plus the poll resolution above. Split '
        'at the agent\'s')
    out('  "applied" log line: before it, the scan wait, reading the graph '
        'from Octavia')
    out('  (driver-agent get socket), the apply and the etcd commit; after '
        'it, the status')
    out('  update through the driver agent\'s status socket (Octavia writes '
        'every object\'s')
    out('  status to its DB) and the poll resolution.')
    out('* multilb provider call inside the POST: from Octavia\'s "Sending '
        'create Load')
    out('  Balancer ... to provider multilb" to multilb\'s "Placed load '
        'balancer" log line:')
    out('  multilb\'s synchronous work (scheduling + atomic reservation in '
        'etcd) measured')
    out('  inside the API process, without the HTTP/DB noise of the POST '
        'ratio.')
    out('* Small differences in the API call besides the provider: '
        'noop_driver creates')
    out('  the VIP itself (create_vip_port), multilb lets Octavia\'s no-op '
        'network driver')
    out('  do it; both are in-memory no-ops here.')
    if args.count < 100:
        out('* With n = %d, p99 is essentially the maximum (one slow sample '
            'moves it).' % args.count)


def stop_all(services, out):
    """Stop every started service (None: not started), reporting, not
    raising, a failure: the others must still stop."""
    for service in services:
        if service is not None:
            try:
                service.stop()
            except Exception as exc:  # noqa: B902 - keep stopping
                out('warning: stopping %s failed: %s' % (
                    type(service).__name__, exc))


def run_main(argv, parse, run_stack, report_run,
             logs='octavia/logs, etcd/, mariadb/'):
    """The main() of every stack benchmark: parse, run in a work directory,
    report, and remove the directory unless --keep or the run failed."""
    args = parse(argv)
    out = print

    def on_term(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    workdir = make_workdir(args.workdir)
    ok = False
    try:
        res = run_stack(args, workdir, out)
        report_run(args, res, out)
        ok = True
    finally:
        if args.keep or not ok:
            out('work directory kept: %s%s' % (
                workdir, '' if ok else ' (run failed; logs in %s)' % logs))
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


def entry(main_function):
    """``if __name__ == '__main__'`` of every stack benchmark."""
    try:
        sys.exit(main_function())
    except BenchError as exc:
        print('benchmark failed: %s' % exc, file=sys.stderr)
        sys.exit(1)


def main(argv=None):
    return run_main(argv, parse_args, run, report)


if __name__ == '__main__':
    entry(main)
