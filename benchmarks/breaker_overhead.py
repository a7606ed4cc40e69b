#!/usr/bin/env python3
"""What a cluster's circuit breaker costs per call, next to its baselines.

A benchmark script, not a test: it prints figures and asserts nothing.
Run it from the repository root with the venv that has multilb::

    python benchmarks/breaker_overhead.py [--calls 20000] [--threads 4]

Two questions, each answered side by side in one run:

1. Cost of a successful call (a function that returns at once), in
   microseconds per call:

   * ``plain call``: no breaker (the floor);
   * ``ClusterBreaker.guard``: multilb's breaker, its state shared through
     a real SQLite state store (``multilb.state``) -- nothing is written
     on a success, so the store is not touched;
   * ``pybreaker.call``: pybreaker alone, in-memory storage;
   * ``store read per call``: what sharing the state by reading the
     store on every call would cost (one SQLite ``get`` of the breaker
     record); a separate measurement found 3.3 ms per call with etcd.

2. Concurrency: ``--threads`` threads each make ``--slow-calls`` calls of
   a function that sleeps ``--sleep`` seconds (an appliance round trip),
   through ``ClusterBreaker.guard`` and through ``pybreaker.call``, which
   holds a lock around the call. Printed: wall time and the effective
   parallelism (sum of call times / wall time).
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

import pybreaker  # noqa: E402  (the baseline)

from backends import transport  # noqa: E402
from multilb import state as state_mod  # noqa: E402
from multilb import store  # noqa: E402


def per_call(func, calls, rounds=5):
    """Median over ``rounds`` of the mean microseconds per call."""
    results = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            func()
        results.append((time.perf_counter() - start) / calls * 1e6)
    return statistics.median(results)


def concurrent(call, threads, calls, sleep):
    """(wall seconds, parallelism) of ``threads`` x ``calls`` slow calls."""
    def slow():
        time.sleep(sleep)

    def worker():
        for _ in range(calls):
            call(slow)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    start = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    wall = time.perf_counter() - start
    return wall, threads * calls * sleep / wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--calls', type=int, default=20000)
    parser.add_argument('--threads', type=int, default=4)
    parser.add_argument('--slow-calls', type=int, default=20)
    parser.add_argument('--sleep', type=float, default=0.01)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix='multilb-breaker-') as tmp:
        kv = store.get_kv_store('sqlite:///%s/state.db' % tmp)
        state = state_mod.State(kv)
        shared = transport.ClusterBreaker(
            'bench', store=state.breaker_record('bench'))
        shared.trip('warm the record')     # a record exists to read ...
        shared._breaker.close()           # ... and the breaker is closed
        plain = pybreaker.CircuitBreaker()

        def nothing():
            return None

        rows = [
            ('plain call', per_call(nothing, args.calls)),
            ('ClusterBreaker.guard (shared via store)',
             per_call(lambda: shared.guard(nothing), args.calls)),
            ('pybreaker.call (memory)',
             per_call(lambda: plain.call(nothing), args.calls)),
            ('store read per call (sqlite)',
             per_call(lambda: state.get_breaker('bench'),
                      max(200, args.calls // 20))),
        ]
        print('cost of one successful call (median of 5 rounds)')
        for label, value in rows:
            print('  %-42s %9.2f us' % (label, value))
        print('  breaker overhead over a plain call: %.2f us' % (
            rows[1][1] - rows[0][1]))

        print('\n%d threads x %d calls of %.0f ms each' % (
            args.threads, args.slow_calls, args.sleep * 1000))
        for label, call in (
                ('ClusterBreaker.guard', shared.guard),
                ('pybreaker.call', plain.call)):
            wall, parallel = concurrent(call, args.threads, args.slow_calls,
                                        args.sleep)
            print('  %-22s wall %6.3f s   parallelism %.2f' % (
                label, wall, parallel))
        kv.close()


if __name__ == '__main__':
    main()
