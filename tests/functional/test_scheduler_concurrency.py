"""Concurrent placement against a real etcd never over-fills a cluster.

Four forked processes, each with its own runtime and scheduler (as four
octavia-api workers), place random load balancers at the same moment on five
small clusters until capacity runs out. The store must then agree with what
the processes were told: no cluster over its limit, every counter equal to
its placement markers, and exactly the successful placements recorded.
"""

from __future__ import annotations

import multiprocessing
import random
import shutil
import uuid

import pytest
from oslo_config import cfg

from multilb import exceptions
from multilb import placement
from multilb import runtime
from multilb import state as state_mod
from multilb import store
from tools.localstack.etcd import EtcdServer

pytestmark = pytest.mark.skipif(shutil.which('etcd') is None,
                                reason='etcd is not installed')

CLUSTERS = {'c1': 3, 'c2': 4, 'c3': 5, 'c4': 6, 'c5': 8}
GOLD = ('c2', 'c4')
PROCESSES = 4
PER_PROCESS = 15        # 60 attempts for 26 slots


def write_conf(path, store_url):
    lines = ['[multilb]',
             'enabled_clusters = %s' % ', '.join(CLUSTERS),
             'store_url = %s' % store_url,
             '[cluster_defaults]',
             'backend = fake']
    for name, limit in CLUSTERS.items():
        lines += ['[cluster:%s]' % name, 'max_loadbalancers = %d' % limit]
        if name in GOLD:
            lines.append('tags = gold')
    path.write_text('\n'.join(lines) + '\n')


def random_flavor(rng):
    return rng.choice([
        {}, {}, {'placement': 'pack'},
        {'clusters': sorted(rng.sample(sorted(CLUSTERS), 2))},
        {'cluster_tags': ['gold']},
    ])


def place_many(conf_path, seed, start, results):
    """One process: a fresh runtime and Placer, then PER_PROCESS creates."""
    runtime.reset()
    conf = cfg.ConfigOpts()
    conf(args=['--config-file', str(conf_path)], project='multilb-func',
         default_config_files=[], default_config_dirs=[])
    placer = placement.Placer(runtime.Runtime(conf))
    rng = random.Random(seed)
    placed, refused, lost = [], 0, 0
    start.wait()
    for _n in range(PER_PROCESS):
        lb = {'loadbalancer_id': str(uuid.uuid4()),
              'project_id': 'proj-%d' % rng.randrange(5),
              'flavor': random_flavor(rng), 'availability_zone': {},
              'listeners': [], 'pools': []}
        try:
            placed.append((lb['loadbalancer_id'], placer.place(lb)))
        except exceptions.NoValidCluster:
            refused += 1
        except RuntimeError:        # lost every race in a row
            lost += 1
    results.put((placed, refused, lost))


@pytest.fixture(scope='module')
def etcd_server(tmp_path_factory):
    server = EtcdServer(str(tmp_path_factory.mktemp('etcd'))).start()
    yield server
    server.stop()


@pytest.mark.parametrize('seed', [1, 2])
def test_concurrent_placements_respect_capacity(etcd_server, tmp_path, seed):
    url = '%s?prefix=/t-%s/' % (etcd_server.store_url, uuid.uuid4().hex)
    conf_path = tmp_path / 'multilb.conf'
    write_conf(conf_path, url)

    ctx = multiprocessing.get_context('fork')
    start, results = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [ctx.Process(target=place_many,
                           args=(conf_path, seed * 100 + n, start, results))
               for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=120) for _worker in workers]
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0

    placed = [item for report in reports for item in report[0]]
    refused = sum(report[1] for report in reports)
    lost = sum(report[2] for report in reports)
    state = state_mod.State(store.get_kv_store(url))
    counts = {name: placed_count for name, (placed_count, _version)
              in state.cluster_counts().items()}
    markers = {name: set(state.cluster_lb_ids(name)) for name in CLUSTERS}

    assert lost == 0
    assert refused > 0, 'capacity was never contended'
    assert len(placed) + refused == PROCESSES * PER_PROCESS
    for name, limit in CLUSTERS.items():
        assert counts.get(name, 0) <= limit, (name, counts)
        assert counts.get(name, 0) == len(markers[name]), name
    assert sum(counts.values()) == len(placed)
    # Each load balancer is where its process was told, and its flavor
    # allowed it there.
    for lb_id, cluster in placed:
        assert lb_id in markers[cluster]
        record = state.get_lb(lb_id)
        assert record['cluster'] == cluster
        flavor = record['flavor']
        assert cluster in flavor.get('clusters', CLUSTERS)
        if flavor.get('cluster_tags'):
            assert cluster in GOLD
