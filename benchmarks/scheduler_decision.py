#!/usr/bin/env python3
"""CPU time of one scheduling decision over a large fleet.

A benchmark script, not a test: it prints figures and asserts nothing.
Run it from the repository root with the Python of a venv where multilb is
installed (the filters and weighers are loaded from their entry points)::

    python benchmarks/scheduler_decision.py
    python benchmarks/scheduler_decision.py --clusters 5000 --decisions 300

The fleet: ``--clusters`` clusters whose counters reflect ``--placements``
existing load balancers of ``--projects`` projects (project sizes follow a
Pareto law; each project's load balancers sit on three clusters, so
``ClusterState.project_placed`` is set for the requesting project). Half of
the fleet carries the tag ``gold``; a few clusters are dedicated to a
project, draining, unhealthy, breaker-open, full, or have recent errors.

Each decision is ``ClusterScheduler.select()`` for a random project with a
flavor ``{'cluster_tags': ['gold']}`` (half the fleet) and an HTTP /
ROUND_ROBIN graph. Its CPU time is ``time.process_time_ns()`` around the
call only; building the per-request ``ClusterState`` list (the work of
``multilb.placement.snapshot``) is timed apart, for context. Variants, in
the same run and on the same requests:

* ``default pipeline, shard 3``: every default filter and weigher, with
  ``shard_size = 3`` and ``tenant_affinity_weight_multiplier = 1.0`` so
  that every weigher computes;
* ``default pipeline, no shard``: the same with sharding off (about half
  the fleet reaches the weighers);
* ``baseline: capacity only``: CapacityFilter and FreeCapacityWeigher;
* ``baseline: max() by free slots``: a plain ``max()`` over the list, no
  scheduler at all.

Target: 2 ms p99 per decision for the default pipeline at 1,000 clusters.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import statistics
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from oslo_config import cfg  # noqa: E402

from backends.fake import backend as fake_backend  # noqa: E402
from multilb.conf import scheduler as scheduler_conf  # noqa: E402
from scheduler import cluster_state  # noqa: E402
from scheduler import manager  # noqa: E402

NEEDS = frozenset({('listener.protocol', 'HTTP'),
                   ('pool.lb_algorithm', 'ROUND_ROBIN')})
FLAVOR = {'cluster_tags': ['gold']}


def build_fleet(rng, clusters, placements, projects):
    """``(base states, {project: {cluster index: count}}, project ids)``."""
    ids = ['project-%06d' % n for n in range(projects)]
    sizes = [rng.paretovariate(1.2) for _ in ids]
    scale = placements / sum(sizes)
    counts = [int(s * scale) for s in sizes]
    for index in rng.sample(range(projects), placements - sum(counts)):
        counts[index] += 1
    placed = [0] * clusters
    homes = {}
    for project, count in zip(ids, counts):
        where = rng.sample(range(clusters), 3)
        share = {}
        for n in range(count):
            share[where[n % 3]] = share.get(where[n % 3], 0) + 1
        for index, n in share.items():
            placed[index] += n
        homes[project] = share
    capabilities = fake_backend.FakeBackend.capabilities()
    states = []
    for index in range(clusters):
        roll = rng.random()
        headroom = 0 if roll < 0.05 else rng.randint(1, 600)
        states.append(cluster_state.ClusterState(
            name='dc%d-c%04d' % (index % 4, index), backend='fake',
            max_loadbalancers=placed[index] + headroom,
            placed=placed[index],
            tags=frozenset({'gold'} if index % 2 else {'silver'}),
            projects=frozenset({rng.choice(ids)}) if 0.05 <= roll < 0.07
            else frozenset(),
            draining=0.07 <= roll < 0.08,
            healthy=(False if 0.08 <= roll < 0.09 else
                     None if 0.09 <= roll < 0.10 else True),
            breaker_open=0.10 <= roll < 0.105,
            recent_errors=rng.choice((0, 0, 0, 0, 1, 2, 5, 20)),
            capabilities=capabilities))
    return states, homes, ids


def states_for(base, homes, project):
    """The fleet as seen by one request of ``project``."""
    states = list(base)
    for index, count in homes.get(project, {}).items():
        states[index] = dataclasses.replace(states[index],
                                            project_placed=count)
    return states


def scheduler(**overrides):
    conf = cfg.ConfigOpts()
    scheduler_conf.register_opts(conf)
    for key, value in overrides.items():
        conf.set_override(key, value, scheduler_conf.GROUP)
    return manager.ClusterScheduler(conf)


def plain_max(request, clusters):
    return [max((c for c in clusters if c.free != 0),
                key=lambda c: c.free if c.free is not None else 1 << 62)]


def figures(samples_ns):
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (statistics.median(ordered) / 1000, p99 / 1000,
            ordered[-1] / 1000, statistics.fmean(ordered) / 1000)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--clusters', type=int, default=1000)
    parser.add_argument('--placements', type=int, default=1_000_000)
    parser.add_argument('--projects', type=int, default=20_000)
    parser.add_argument('--decisions', type=int, default=1000)
    parser.add_argument('--warmup', type=int, default=50)
    parser.add_argument('--shard-size', type=int, default=3)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args(argv)

    rng = random.Random(args.seed)
    started = time.perf_counter()
    base, homes, ids = build_fleet(rng, args.clusters, args.placements,
                                   args.projects)
    built = time.perf_counter() - started
    variants = [
        ('default pipeline, shard %d' % args.shard_size,
         scheduler(shard_size=args.shard_size,
                   tenant_affinity_weight_multiplier=1.0).select),
        ('default pipeline, no shard',
         scheduler(shard_size=0,
                   tenant_affinity_weight_multiplier=1.0).select),
        ('baseline: capacity only',
         scheduler(enabled_filters=['CapacityFilter'],
                   enabled_weighers=['FreeCapacityWeigher']).select),
        ('baseline: max() by free slots', plain_max),
    ]
    projects = [rng.choice(ids) for _ in range(args.warmup + args.decisions)]
    samples = {name: [] for name, _select in variants}
    snapshot_ns, refused = [], 0
    for number, project in enumerate(projects):
        t0 = time.process_time_ns()
        states = states_for(base, homes, project)
        snapshot_ns.append(time.process_time_ns() - t0)
        request = cluster_state.PlacementRequest(
            loadbalancer_id='lb-%d' % number, project_id=project,
            flavor=FLAVOR, needs=NEEDS)
        for name, select in variants:
            t0 = time.process_time_ns()
            try:
                select(request, states)
            except Exception:       # NoValidCluster: a shard all full
                refused += 1
            elapsed = time.process_time_ns() - t0
            if number >= args.warmup:
                samples[name].append(elapsed)

    print('scheduler decision, CPU time per select() call '
          '(time.process_time_ns)')
    print('python %s on %s, %s CPUs' % (platform.python_version(),
                                        platform.machine(), os.cpu_count()))
    print('fleet: %d clusters (%d tagged gold), %s placements of %s '
          'projects, built in %.1f s' % (
              len(base), sum('gold' in c.tags for c in base),
              '{:,}'.format(sum(c.placed for c in base)),
              '{:,}'.format(len(ids)), built))
    print('decisions: %d measured (+%d warm-up), flavor cluster_tags=gold, '
          'random project each; refused by some variant: %d' % (
              args.decisions, args.warmup, refused))
    print()
    print('%-32s %9s %9s %9s %9s' % ('variant', 'p50 us', 'p99 us',
                                     'max us', 'mean us'))
    rows = [(name, samples[name]) for name, _select in variants]
    rows.append(('(context) build ClusterStates',
                 snapshot_ns[args.warmup:]))
    for name, values in rows:
        print('%-32s %9.1f %9.1f %9.1f %9.1f' % ((name,) + figures(values)))
    return 0


if __name__ == '__main__':
    sys.exit(main())
