#!/usr/bin/env python3
"""State store calls and CPU of one provider agent whose clusters are idle.

A benchmark script, not a test: it prints figures and asserts nothing.
Run it from the repository root with the venv that has multilb::

    python benchmarks/idle_store_load.py                  # SQLite, 1 20 100
    python benchmarks/idle_store_load.py --clusters 1 20 --duration 10
    python benchmarks/idle_store_load.py --store etcd     # a local etcd

For each number of ``--clusters``, one provider agent process
(``benchmarks/agent_process.py``'s ``run_agent``: ``multilb.agent.run`` as
octavia-driver-agent runs it, without Octavia) drives that many clusters
of the ``fake`` backend (in memory: probes and listings cost nothing on the
appliance side), with multilb's default ``[multilb]`` options and no load
balancer, so nothing changes. The store:

* ``--store sqlite`` (default): ``sqlite:///<workdir>/n<N>/state.db`` and
  ``file://`` locks, the single-host setup;
* ``--store etcd``: one etcd (tools/localstack, free ports, data in the
  work directory) for the store and the coordination (tooz's defaults),
  a key prefix of its own per number of clusters.

The agent process counts its calls of the store's ``get``, ``get_prefix``
and ``commit`` (a commit with nothing to check or write does not reach the
store and is not counted) and, with etcd, every HTTP request it sends to
etcd (store calls and tooz's membership, lock and lease requests). It
waits until the agent has claimed every cluster, then ``--settle`` seconds,
then counts for ``--duration`` seconds. Printed per number of clusters:
calls per second of each kind, all calls per second and per cluster, the
agent process's CPU time over the same period (``time.process_time``, all
its threads) as a share of one core, and its threads (the agent's own:
the process's minus the counting thread).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import create_to_active as base  # noqa: E402
from tools.localstack import EtcdServer, Service  # noqa: E402

KINDS = ('commit', 'get', 'get_prefix')


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--clusters', type=int, nargs='+', default=[1, 20, 100],
                   help='numbers of fake clusters, one agent process each '
                        '(default 1 20 100)')
    p.add_argument('--duration', type=float, default=30.0,
                   help='seconds counted per agent (default 30)')
    p.add_argument('--settle', type=float, default=3.0,
                   help='seconds between the last cluster claimed and the '
                        'count (default 3)')
    p.add_argument('--store', choices=('sqlite', 'etcd'), default='sqlite',
                   help='state store and coordination (default sqlite with '
                        'file:// locks)')
    p.add_argument('--workdir',
                   help='work directory (must not exist or be empty; '
                        'default: a new temporary directory)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (logs, data) at the end')
    # The agent process (started by this script, not by hand).
    p.add_argument('--child', metavar='CONFIG', help=argparse.SUPPRESS)
    p.add_argument('--result', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if min(args.clusters) < 1 or args.duration <= 0:
        p.error('--clusters must be >= 1 and --duration > 0')
    return args


# --------------------------------------------------------------------------
# The agent process
# --------------------------------------------------------------------------

def count_calls(counts, lock):
    """Count the store calls and etcd requests of this process."""
    from multilb.store import etcd as etcd_store
    from multilb.store import etcd_client
    from multilb.store import sqlite as sqlite_store

    def counted(cls, name, label, call_made=lambda *a, **k: True):
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            if call_made(*args, **kwargs):
                with lock:
                    counts[label] += 1
            return original(self, *args, **kwargs)
        setattr(cls, name, wrapper)

    def not_empty(checks=None, puts=None, deletes=()):
        return bool(checks or puts or deletes)

    for cls in (sqlite_store.SqliteKVStore, etcd_store.EtcdKVStore):
        counted(cls, 'get', 'get')
        counted(cls, 'get_prefix', 'get_prefix')
        counted(cls, 'commit', 'commit', not_empty)
    counted(etcd_client.FailoverClient, 'post', 'etcd_requests')


def child(args):
    import agent_process
    from multilb import fencing
    from multilb import runtime

    counts, lock = collections.Counter(), threading.Lock()
    count_calls(counts, lock)
    agent_process.setup_logging()
    agent_process.load_config(args.child)
    rt = runtime.get()      # the one multilb.agent.run uses
    clusters = set(rt.clusters.clusters)
    kv = rt.state.kv
    exit_event = threading.Event()
    agent = threading.Thread(target=agent_process.run_agent,
                             args=(exit_event,), name='agent')
    agent.start()
    deadline = time.monotonic() + 120
    while set(fencing.owners(kv)) < clusters:
        if time.monotonic() > deadline or not agent.is_alive():
            exit_event.set()
            raise SystemExit('the agent did not claim every cluster')
        time.sleep(0.5)
    time.sleep(args.settle)
    with lock:
        counts.clear()
    t0, cpu0 = time.monotonic(), time.process_time()
    time.sleep(args.duration)
    with lock:
        counted = dict(counts)
    elapsed = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    threads = threading.active_count() - 1     # not this (main) thread
    claimed = len(set(fencing.owners(kv)) & clusters)
    exit_event.set()
    agent.join(60)
    with open(args.result, 'w') as f:
        json.dump({'clusters': len(clusters), 'claimed': claimed,
                   'seconds': elapsed, 'cpu': cpu, 'threads': threads,
                   'counts': counted}, f)
    return 0


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------

def measure(args, workdir, etcd, count):
    """Run one agent process over ``count`` clusters; its result."""
    where = os.path.join(workdir, 'n%d' % count)
    os.makedirs(where)
    if etcd is None:
        store_url = 'sqlite:///%s/state.db' % where
        coord_url = 'file://%s/locks' % where
    else:
        store_url = etcd.store_url + '?prefix=/idle-%d/' % count
        coord_url = etcd.store_url
    config = os.path.join(where, 'multilb.conf')
    import agent_process
    agent_process.write_config(config, store_url, coord_url,
                               ['c%d' % i for i in range(count)])
    result = os.path.join(where, 'result.json')
    service = Service.spawn(
        'agent-n%d' % count,
        [sys.executable, os.path.abspath(__file__), '--child', config,
         '--result', result, '--duration', str(args.duration),
         '--settle', str(args.settle)],
        os.path.join(where, 'agent.log'))
    try:
        deadline = time.monotonic() + args.duration + args.settle + 300
        while service.alive():
            if time.monotonic() > deadline:
                raise base.BenchError('agent over %d clusters did not finish;'
                                      ' see %s' % (count, service.log_path))
            time.sleep(0.5)
    finally:
        service.stop()
    if service.returncode != 0 or not os.path.exists(result):
        raise base.BenchError('agent over %d clusters failed (status %s); '
                              'see %s' % (count, service.returncode,
                                          service.log_path))
    with open(result) as f:
        return json.load(f), store_url, coord_url


def run(args, workdir, out):
    etcd = None
    results = []
    try:
        if args.store == 'etcd':
            etcd = EtcdServer(workdir).start()
        out('idle store load: one agent, fake clusters, default [multilb] '
            'options, nothing changing')
        for line in base.machine_info():
            out(line)
        out('load avg:  %s (before)' % base.loadavg())
        for count in args.clusters:
            res, store_url, coord_url = measure(args, workdir, etcd, count)
            if not results:
                out('store_url        = %s' % store_url.replace(
                    'n%d' % count, 'n<N>').replace(
                    'idle-%d' % count, 'idle-<N>'))
                out('coordination_url = %s' % coord_url.replace(
                    'n%d' % count, 'n<N>'))
                out('counted: %g s per agent, after every cluster was '
                    'claimed and %g s more' % (args.duration, args.settle))
            results.append(res)
    finally:
        if etcd is not None:
            etcd.stop()
    return results


def report(args, results, out):
    out('')
    etcd = args.store == 'etcd'
    head = '%8s %7s %9s %7s %14s %11s %11s %10s %8s' % (
        'clusters', 'claimed', 'commits/s', 'gets/s', 'prefix reads/s',
        'all calls/s', 'per cluster', 'agent CPU', 'threads')
    if etcd:
        head += ' %15s' % 'etcd requests/s'
    out(head)
    for res in results:
        rate = {kind: res['counts'].get(kind, 0) / res['seconds']
                for kind in KINDS}
        total = sum(rate.values())
        line = '%8d %7d %9.1f %7.1f %14.1f %11.1f %11.2f %9.1f%% %8d' % (
            res['clusters'], res['claimed'], rate['commit'], rate['get'],
            rate['get_prefix'], total, total / res['clusters'],
            100.0 * res['cpu'] / res['seconds'], res['threads'])
        if etcd:
            line += ' %15.1f' % (
                res['counts'].get('etcd_requests', 0) / res['seconds'])
        out(line)
    out('(agent CPU: share of one core; threads: the agent process\'s%s)' % (
        '; etcd requests: store and coordination' if etcd else ''))
    out('load avg:  %s (after)' % base.loadavg())


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    return base.run_main(argv, parse_args, run, report,
                         logs='n<N>/agent.log, etcd/')


if __name__ == '__main__':
    base.entry(main)
