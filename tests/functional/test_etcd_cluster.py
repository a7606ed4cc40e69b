"""multilb on a 3-member etcd cluster (issue 13): the store and
coordination URLs list every member, and one member killed while users
create load balancers costs a stall, not a placement.

The module runs its own fleet: etcd as three members on loopback
(tools/localstack/etcd.EtcdCluster), MariaDB, Octavia API + driver agent and
two FAKE clusters. The member killed is the etcd leader, the worst case: the
survivors elect a new one before any write can commit. The longest stall
(slowest create request, slowest create to ACTIVE) is printed as a figure,
not asserted: it depends on the host's load.
"""

import statistics
import threading
import time

import pytest

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import ACTIVE, FULL_GRAPH, manage_json
from multilb import keys
from multilb import store

PROJECT = 'proj-etcd'
CREATES = 20
KILL_AFTER = 8          # creates made before the leader is killed
DOWN_FOR = 10.0         # seconds the member stays down (> lock TTL, 6 s)
SETTLE = 120


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('etcd-cluster', numbered=True)
    started = fleet_mod.Fleet(workdir, {'alpha': 50, 'beta': 50},
                              etcd_members=3).start()
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def conn(fleet):
    return fleet.connection()


def _multilb_option(fleet, name):
    with open(fleet.octavia.conf_path) as f:
        for line in f:
            if line.startswith(name + ' = '):
                return line.split(' = ', 1)[1].strip()
    raise AssertionError('no %s in %s' % (name, fleet.octavia.conf_path))


def _member_store(fleet, index):
    """The multilb store read through one member only."""
    member = fleet.etcd.members[index]
    return store.get_kv_store('etcd3+http://127.0.0.1:%d?prefix=/multilb/'
                              '&timeout=3' % member.port)


def test_urls_list_every_member_and_the_agent_drives_every_cluster(fleet):
    members = ','.join('127.0.0.1:%d' % m.port for m in fleet.etcd.members)
    for option in ('store_url', 'coordination_url'):
        assert _multilb_option(fleet, option).startswith(
            'etcd3+http://%s?' % members)
    # the agent takes its clusters within a few membership intervals
    fleet_mod.wait_for(
        lambda: manage_json(fleet, 'agents', 'list')[
            'clusters_without_live_agent'] == [], timeout=30,
        what='every cluster driven by a live agent')
    listed = manage_json(fleet, 'agents', 'list')
    assert sorted(c for a in listed['agents'] for c in a['clusters']) == [
        'alpha', 'beta']


class _Creates:
    """Creates load balancers one after the other from a thread and
    records how long each request took and when each became ACTIVE."""

    def __init__(self, conn):
        self.conn = conn
        self.posted = []      # (name, started, seconds, lb id or error)
        self.active_at = {}   # lb id -> time first seen ACTIVE
        self.done = threading.Event()
        self.started = threading.Event()

    def create(self, count, pause=1.0, kill_after=None, kill=None):
        for index in range(count):
            if index == kill_after:
                kill()
            name = 'etcd-%02d' % index
            begin = time.monotonic()
            try:
                lb_id = self.conn.load_balancer.create_load_balancer(
                    name=name, project_id=PROJECT,
                    vip_subnet_id=fleet_mod.VIP_SUBNET,
                    listeners=FULL_GRAPH).id
            except Exception as exc:  # noqa: B902 - reported by the test
                lb_id = exc
            self.posted.append((name, begin, time.monotonic() - begin, lb_id))
            time.sleep(pause)

    def watch(self):
        """Note when each load balancer is first seen ACTIVE."""
        lbc = self.conn.load_balancer
        while not self.done.is_set():
            now = time.monotonic()
            for lb in lbc.load_balancers(project_id=PROJECT):
                if lb.provisioning_status == ACTIVE:
                    self.active_at.setdefault(lb.id, now)
            time.sleep(0.2)


def test_a_member_killed_under_creates_loses_no_placement(fleet, conn,
                                                          capsys):
    cluster = fleet.etcd
    assert cluster.healthy_members() == [0, 1, 2]
    killed = {}

    def kill_leader():
        killed['index'] = cluster.leader()
        assert killed['index'] is not None
        cluster.kill(killed['index'])
        killed['at'] = time.monotonic()

    run = _Creates(fleet.connection())
    watcher = threading.Thread(target=run.watch, daemon=True)
    watcher.start()
    try:
        run.create(CREATES, kill_after=KILL_AFTER, kill=kill_leader)
        # Keep the member down long enough for every lock and membership
        # lease to have expired had the agent lost them.
        time.sleep(max(0.0, DOWN_FOR - (time.monotonic() - killed['at'])))
        assert len(cluster.healthy_members()) == 2
        cluster.start_member(killed['index'])
        rejoined_after = time.monotonic() - killed['at']
        fleet_mod.wait_for(lambda: len(run.active_at) == CREATES,
                           timeout=SETTLE, interval=0.5,
                           what='every load balancer ACTIVE')
    finally:
        run.done.set()
        watcher.join(10)

    # Every create was taken: none refused, none lost.
    refused = [(name, lb_id) for name, _b, _s, lb_id in run.posted
               if isinstance(lb_id, Exception)]
    assert refused == []
    ids = {lb_id for _n, _b, _s, lb_id in run.posted}
    lbc = conn.load_balancer
    assert {lb.id for lb in lbc.load_balancers(project_id=PROJECT)} == ids
    assert {lbc.get_load_balancer(i).provisioning_status for i in ids} == {
        ACTIVE}
    # Each has its placement, on the cluster that holds it, and the
    # counters equal what is placed.
    placed = {}
    for name in fleet.clusters:
        shown = manage_json(fleet, 'cluster', 'show', name)
        on_cluster = {lb['id'] for lb in shown['loadbalancers']}
        assert shown['placed'] == len(on_cluster), shown
        assert (shown['pending_intents'], shown['outbox']) == (0, 0), shown
        placed.update(dict.fromkeys(on_cluster, name))
    assert set(placed) == ids
    for lb_id in ids:
        assert fleet.appliance(lb_id)[0] == placed[lb_id]
    # The agent kept its membership and locks: it still drives both.
    listed = manage_json(fleet, 'agents', 'list')
    assert len([a for a in listed['agents'] if a['live']]) == 1
    assert listed['clusters_without_live_agent'] == []
    # The member rejoined and caught up: it holds every placement.
    fleet_mod.wait_for(lambda: cluster.healthy_members() == [0, 1, 2],
                       timeout=60, what='the killed member healthy again')
    rejoined = _member_store(fleet, killed['index'])
    fleet_mod.wait_for(
        lambda: all(rejoined.get(keys.lb_key(i)) for i in ids), timeout=30,
        what='the rejoined member holding every placement')

    before = [s for _n, begin, s, _i in run.posted if begin < killed['at']]
    after = [(s, name) for name, begin, s, _i in run.posted
             if begin >= killed['at']]
    created = {lb_id: begin for _n, begin, _s, lb_id in run.posted}
    to_active = sorted((run.active_at[i] - created[i], i) for i in ids)
    with capsys.disabled():
        print('\n[etcd cluster] %d creates, leader (member m%d) killed '
              'after %d, back after %.1f s: 0 refused, 0 lost'
              % (CREATES, killed['index'], KILL_AFTER, rejoined_after))
        print('[etcd cluster] create request: median %.2f s before the '
              'kill; longest after it %.2f s (%s)' % (
                  statistics.median(before), *max(after)))
        print('[etcd cluster] create to ACTIVE: median %.2f s before the '
              'kill, %.2f s after it; longest %.2f s' % (
                  statistics.median(run.active_at[i] - b for i, b in
                                    created.items() if b < killed['at']),
                  statistics.median(run.active_at[i] - b for i, b in
                                    created.items() if b >= killed['at']),
                  to_active[-1][0]))
        print('[etcd cluster] create to ACTIVE, in order: %s' % ' '.join(
            '%.1f' % (run.active_at[i] - b) for i, b in created.items()))
