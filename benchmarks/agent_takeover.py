#!/usr/bin/env python3
"""How long the clusters of a provider agent that stops or dies stay
without an agent: two agents over a local etcd, one of them signalled.

A benchmark script, not a test: it prints figures and asserts nothing about
times. Run it from the repository root with the venv that has multilb
(etcd from the system, as for tools/localstack)::

    python benchmarks/agent_takeover.py --signal TERM --runs 3
    python benchmarks/agent_takeover.py --signal KILL --runs 3
    python benchmarks/agent_takeover.py --signal KILL --runs 3 \\
        --timeout 5 --lock-timeout 10 --membership-timeout 10

What runs: one etcd (tools/localstack, free ports, data in the work
directory) for multilb's store and coordination, and two provider agent
processes (``benchmarks/agent_process.py``: ``multilb.agent.run`` as
octavia-driver-agent runs it, without Octavia) with the same configuration:
``--clusters`` clusters of the ``fake`` backend (in memory, nothing to
apply), ``[multilb]`` options at multilb's defaults, and
``coordination_url`` = the etcd with the tooz options ``--timeout``,
``--lock-timeout`` and ``--membership-timeout`` (each left out of the URL
unless given, so tooz's defaults apply).

Each run:

1. waits until the two agents are in the agents' group, every cluster is
   claimed (``owner/<cluster>`` in the store) by one of them, and the
   claims have not changed for ``--settle`` seconds;
2. sends ``--signal`` to the agent that drives the most clusters: TERM is
   a clean stop (as when octavia-driver-agent is stopped), KILL a crash;
3. reads the claims every 0.05 s until every cluster of that agent is
   claimed by the other one.

Printed per run: how many clusters the signalled agent drove, when its
process was gone, when the first and when the last of its clusters had a
new owner (seconds from the signal, ``time.monotonic``; resolution: one
store read, about 0.05 s). Then a new agent process replaces the signalled
one for the next run. At the end: min, median and max over the runs of the
time until every cluster had a new owner.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import time
import urllib.parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HERE = os.path.dirname(os.path.abspath(__file__))
for path in (REPO, HERE):
    if path not in sys.path:
        sys.path.insert(0, path)

import agent_process  # noqa: E402
import create_to_active as base  # noqa: E402
from multilb import coordination  # noqa: E402
from multilb import fencing  # noqa: E402
from multilb import store as store_mod  # noqa: E402
from tools.localstack import EtcdServer, Service  # noqa: E402

AGENT_SCRIPT = os.path.join(HERE, 'agent_process.py')
POLL = 0.05


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--signal', choices=('TERM', 'KILL'), default='TERM',
                   help='TERM: clean stop; KILL: crash (default TERM)')
    p.add_argument('--runs', type=int, default=3,
                   help='agents signalled, one after the other (default 3)')
    p.add_argument('--clusters', type=int, default=4,
                   help='fake clusters the two agents share (default 4)')
    p.add_argument('--timeout', type=int,
                   help="tooz's timeout=S in coordination_url (whole "
                        'seconds; default: left out, tooz uses 30)')
    p.add_argument('--lock-timeout', type=int,
                   help='lock_timeout=S in coordination_url (default: left '
                        'out, tooz uses timeout)')
    p.add_argument('--membership-timeout', type=int,
                   help='membership_timeout=S in coordination_url (default: '
                        'left out, tooz uses timeout)')
    p.add_argument('--settle', type=float, default=5.0,
                   help='seconds the claims must stay unchanged before the '
                        'signal (default 5)')
    p.add_argument('--run-timeout', type=float, default=180.0,
                   help='give up when a run or the wait before it takes '
                        'longer (default 180)')
    p.add_argument('--workdir',
                   help='work directory (must not exist or be empty; '
                        'default: a new temporary directory)')
    p.add_argument('--keep', action='store_true',
                   help='keep the work directory (logs, data) at the end')
    args = p.parse_args(argv)
    if args.runs < 1 or args.clusters < 1:
        p.error('--runs and --clusters must be >= 1')
    return args


def coordination_url(etcd, args):
    options = [(name, value) for name, value in (
        ('timeout', args.timeout), ('lock_timeout', args.lock_timeout),
        ('membership_timeout', args.membership_timeout)) if value is not None]
    query = urllib.parse.urlencode(options)
    return etcd.store_url + ('?' + query if query else '')


def member_pid(member_id):
    """The process id in a member id ``<host>-<pid>-<suffix>``
    (``multilb.coordination.new_member_id``)."""
    try:
        return int(member_id.rsplit('-', 2)[1])
    except (IndexError, ValueError):
        return None


class Agents:
    """The agent processes of this run, by process id."""

    def __init__(self, workdir, config):
        self.workdir = workdir
        self.config = config
        self.procs = {}
        self.started = 0

    def spawn(self):
        self.started += 1
        log = os.path.join(self.workdir, 'agent-%d.log' % self.started)
        service = Service.spawn(
            'agent-%d' % self.started,
            [sys.executable, AGENT_SCRIPT, '--config-file', self.config], log)
        self.procs[service.pid] = service
        return service

    def stop_all(self, out):
        for service in self.procs.values():
            try:
                service.stop()
            except Exception as exc:  # noqa: B902 - keep stopping
                out('warning: stopping %s failed: %s' % (service.name, exc))


def claims(kv):
    """``{cluster: agent id}`` of the owner claims in the store."""
    return {name: claim.get('agent')
            for name, claim in fencing.owners(kv).items()}


def wait_steady(kv, coord_url, agents, clusters, settle, timeout):
    """The claims once both agents are in the group, every cluster is
    claimed by one of them and nothing changed for ``settle`` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        for service in agents.procs.values():
            if not service.alive():
                raise base.BenchError('%s (pid %d) exited; see %s' % (
                    service.name, service.pid, service.log_path))
        live = coordination.live_agents(coord_url)
        pids = {member_pid(m) for m in live}
        owned = claims(kv)
        ok = (pids == set(agents.procs)
              and set(owned) >= set(clusters)
              and all(owned[c] in live for c in clusters))
        current = owned if ok else None
        if current != last:
            last, since = current, time.monotonic()
        elif ok and time.monotonic() - since >= settle:
            return owned
        time.sleep(0.5)
    raise base.BenchError('the agents did not settle within %.0f s '
                          '(logs: %s)' % (timeout, agents.workdir))


def one_run(kv, agents, owned, signame, timeout):
    """Signal the agent with the most clusters; seconds until its process
    is gone, the first and the last of its clusters taken over."""
    per_agent = {}
    for cluster, agent in owned.items():
        per_agent.setdefault(agent, []).append(cluster)
    victim = max(per_agent, key=lambda a: (len(per_agent[a]), a))
    theirs = sorted(per_agent[victim])
    service = agents.procs[member_pid(victim)]
    moved = {}
    gone = None
    t0 = time.monotonic()
    service.kill(getattr(signal, 'SIG' + signame))
    while len(moved) < len(theirs):
        now = time.monotonic() - t0
        if now > timeout:
            raise base.BenchError(
                '%d of %d clusters still claimed by the signalled agent '
                'after %.0f s' % (len(theirs) - len(moved), len(theirs),
                                  timeout))
        if gone is None and not service.alive():
            gone = now
        current = claims(kv)
        for cluster in theirs:
            if cluster not in moved and current.get(cluster) != victim:
                moved[cluster] = time.monotonic() - t0
        time.sleep(POLL)
    service.stop()      # reaps it (TERM: waits until it is gone)
    if gone is None:
        gone = time.monotonic() - t0
    del agents.procs[service.pid]
    return {'pid': service.pid, 'clusters': len(theirs),
            'gone': gone, 'first': min(moved.values()),
            'last': max(moved.values())}


def run(args, workdir, out):
    clusters = ['c%d' % i for i in range(args.clusters)]
    etcd = None
    agents = None
    results = []
    try:
        etcd = EtcdServer(workdir).start()
        coord_url = coordination_url(etcd, args)
        config = agent_process.write_config(
            os.path.join(workdir, 'multilb.conf'), etcd.store_url, coord_url,
            clusters)
        kv = store_mod.get_kv_store(etcd.store_url)
        out('agent takeover, %d fake clusters, 2 agents over a local etcd'
            % args.clusters)
        for line in base.machine_info():
            out(line)
        out('load avg:  %s (before)' % base.loadavg())
        out('store_url        = %s' % etcd.store_url)
        out('coordination_url = %s' % coord_url)
        out('[multilb] options: multilb defaults; signal: SIG%s; runs: %d; '
            'settle: %g s' % (args.signal, args.runs, args.settle))
        out('')
        agents = Agents(workdir, config)
        agents.spawn()
        agents.spawn()
        for number in range(1, args.runs + 1):
            owned = wait_steady(kv, coord_url, agents, clusters,
                                args.settle, args.run_timeout)
            res = one_run(kv, agents, owned, args.signal, args.run_timeout)
            results.append(res)
            out('run %d: SIG%s to agent pid %d (drove %d of %d clusters): '
                'process gone after %.2f s; first cluster taken over after '
                '%.2f s, every one after %.2f s' % (
                    number, args.signal, res['pid'], res['clusters'],
                    args.clusters, res['gone'], res['first'], res['last']))
            if number < args.runs:
                agents.spawn()
        kv.close()
    finally:
        if agents is not None:
            agents.stop_all(out)
        if etcd is not None:
            etcd.stop()
    return results


def report(args, results, out):
    every = [r['last'] for r in results]
    out('')
    out('load avg:  %s (after)' % base.loadavg())
    out('SIG%s, every cluster of the signalled agent taken over, %d runs: '
        'min %.2f s, median %.2f s, max %.2f s' % (
            args.signal, len(every), min(every), statistics.median(every),
            max(every)))


def main(argv=None):
    return base.run_main(argv, parse_args, run, report,
                         logs='agent-*.log, etcd/')


if __name__ == '__main__':
    base.entry(main)
