"""The provider agent (multilb/agent.py): who runs which cluster's worker.

Real tooz file:// coordination in tmp_path, real ClusterWorkers (their scan
threads run), a fake Octavia. Invariant checked throughout: a cluster is
never driven by two agents at once.
"""

import json
import threading
import time

import pytest

from multilb import agent as agent_mod
from multilb import coordination
from multilb import driver as driver_mod
from multilb import exceptions
from multilb import keys
from multilb import schema
from multilb import worker as worker_mod
from tests.unit import fixtures as fx

CLUSTERS = ['c%d' % n for n in range(6)]


@pytest.fixture
def rt(tmp_path, monkeypatch):
    runtime = fx.make_runtime(
        tmp_path, {name: {} for name in CLUSTERS},
        options={'poll_interval': 0.05, 'membership_interval': 0.1})
    fx.create_agent_group(runtime.conf.multilb.coordination_url)
    return fx.use_runtime(monkeypatch, runtime)


@pytest.fixture
def octavia():
    return fx.FakeOctavia()


@pytest.fixture
def agents(rt, octavia):
    started = []

    def _start(member_id, runtime=None):
        """An agent of ``runtime`` (another host's configuration over the
        same store and coordination; default ``rt``)."""
        runtime = runtime or rt
        agent = agent_mod.Agent(runtime, octavia, coordination.Coordinator(
            runtime.conf.multilb.coordination_url, member_id=member_id,
            capabilities=coordination.capabilities(
                runtime.clusters.clusters,
                runtime.conf.multilb.enabled_clusters, 'test')))
        agent.start()
        started.append(agent)
        return agent

    yield _start
    for agent in started:
        agent.stop()


def assert_exclusive(*agents):
    """No cluster has a worker in two agents; workers hold their locks."""
    seen = set()
    for agent in agents:
        names = set(agent.workers)
        assert not names & seen
        seen |= names
        assert agent.coordinator.held() == names
        for name, worker in agent.workers.items():
            assert worker.name == name
    return seen


def test_two_agents_split_the_clusters(agents):
    a, b = agents(b'agent-a'), agents(b'agent-b')
    a.rebalance()
    b.rebalance()

    assert assert_exclusive(a, b) == set(CLUSTERS)
    assert a.workers and b.workers


def test_when_an_agent_stops_the_other_takes_its_clusters(agents):
    a, b = agents(b'agent-a'), agents(b'agent-b')
    a.rebalance()
    b.rebalance()
    held_by_b = set(b.workers)

    b.stop()
    assert b.workers == {}
    a.rebalance()

    assert assert_exclusive(a) == set(CLUSTERS)
    assert held_by_b <= set(a.workers)


def test_a_late_agent_waits_until_the_locks_are_given_up(agents):
    a = agents(b'agent-a')
    a.rebalance()
    assert assert_exclusive(a) == set(CLUSTERS)

    b = agents(b'agent-b')
    b.rebalance()                       # b's share is still locked by a
    assert b.workers == {}
    assert_exclusive(a, b)

    a.rebalance()                       # a gives b's share up
    assert_exclusive(a, b)
    assert set(a.workers) != set(CLUSTERS)
    b.rebalance()                       # and b takes it

    assert assert_exclusive(a, b) == set(CLUSTERS)
    assert b.workers


def test_started_workers_apply_pending_work(agents, rt, octavia):
    a = agents(b'agent-a')
    a.rebalance()
    driver = driver_mod.MultiLBProviderDriver()
    driver.loadbalancer_create(fx.create_lb())
    octavia.commit(fx.full_lb())
    cluster = rt.state.get_lb(fx.LB)['cluster']

    deadline = time.monotonic() + 10
    while ('loadbalancers', fx.LB) not in octavia.provisioning():
        assert time.monotonic() < deadline, 'the agent never reported'
        time.sleep(0.02)

    assert octavia.provisioning()[('loadbalancers', fx.LB)] == 'ACTIVE'
    assert fx.LB in a.workers[cluster].backend.list_loadbalancer_ids()


NEW = ['n%d' % n for n in range(4)]


@pytest.fixture
def rt_newer(tmp_path):
    """Another host's configuration half-way through a rolling change:
    four more clusters enabled, same store and coordination."""
    return fx.make_runtime(
        tmp_path, {name: {} for name in CLUSTERS + NEW},
        options={'poll_interval': 0.05, 'membership_interval': 0.1},
        name='newer.conf')


def test_a_cluster_only_some_agents_configure_is_driven_by_one_of_them(
        agents, rt_newer, caplog):
    caplog.set_level('INFO', logger='multilb.agent')
    a, b = agents(b'agent-a'), agents(b'agent-b', rt_newer)
    for _ in range(3):
        a.rebalance()
        b.rebalance()

    # every cluster has a worker, the new ones on the agent that knows them
    assert assert_exclusive(a, b) == set(CLUSTERS + NEW)
    assert set(NEW) <= set(b.workers)
    assert a.workers and set(b.workers) - set(NEW)   # the rest still shared

    # each side says so once, naming the other agent and the clusters
    warnings = [r.getMessage() for r in caplog.records
                if r.levelname == 'WARNING']
    assert warnings == [
        'Agent agent-b has a different [multilb] enabled_clusters than '
        'agent agent-a: it has n0, n1, n2, n3 that this agent does not. '
        'Each cluster is driven only by agents that configure it; finish '
        'the configuration change on every host (see the operations '
        'guide, "Adding a cluster")',
        'Agent agent-a has a different [multilb] enabled_clusters than '
        'agent agent-b: it lacks n0, n1, n2, n3. Each cluster is driven '
        'only by agents that configure it; finish the configuration '
        'change on every host (see the operations guide, "Adding a '
        'cluster")']

    # the change reaches a's host: a restarted agent agrees, b says so
    a.stop()
    a2 = agents(b'agent-a2', rt_newer)
    caplog.clear()
    b.rebalance()
    a2.rebalance()
    b.rebalance()
    assert ('Agent agent-b: every live agent has the same [multilb] '
            'enabled_clusters again') in caplog.text
    assert 'WARNING' not in [r.levelname for r in caplog.records]
    assert assert_exclusive(a2, b) == set(CLUSTERS + NEW)


def test_unknown_membership_keeps_the_clusters_held(agents, monkeypatch):
    a = agents(b'agent-a')
    a.rebalance()

    def unavailable():
        raise exceptions.StoreUnavailable('etcd down')

    monkeypatch.setattr(a.coordinator, 'view', unavailable)
    a.rebalance()
    assert assert_exclusive(a) == set(CLUSTERS)


def test_worker_that_fails_to_start_gives_its_lock_back(agents, rt,
                                                        monkeypatch):
    real_start = worker_mod.ClusterWorker.start

    def start(worker):
        if worker.name == 'c0':
            raise RuntimeError('appliance session failed')
        real_start(worker)

    monkeypatch.setattr(worker_mod.ClusterWorker, 'start', start)
    a = agents(b'agent-a')
    a.rebalance()

    assert assert_exclusive(a) == set(CLUSTERS) - {'c0'}
    other = coordination.Coordinator(rt.conf.multilb.coordination_url,
                                     member_id=b'probe')
    other.start()
    try:
        assert other.acquire('c0')
    finally:
        other.stop()


def test_run_until_exit_event_then_gives_every_cluster_back(rt):
    exit_event = threading.Event()
    exit_event.set()        # octavia-driver-agent is shutting down

    assert agent_mod.run(exit_event) is None

    other = coordination.Coordinator(rt.conf.multilb.coordination_url,
                                     member_id=b'probe')
    other.start()
    try:
        assert other.members() == {b'probe'}
        assert all(other.acquire(name) for name in CLUSTERS)
    finally:
        other.stop()


def test_an_agent_records_the_key_layout_and_refuses_another(rt, agents,
                                                             caplog):
    """The first agent records the store's key layout version; an agent
    that finds a newer one (a store upgraded by a newer multilb) drives no
    cluster and says why."""
    a = agents(b'agent-a')
    a.rebalance()
    assert schema.read(rt.state.kv)['version'] == keys.SCHEMA_VERSION
    assert a.workers
    a.stop()
    rt.state.kv.commit(puts={keys.schema_key(): json.dumps(
        {'version': keys.SCHEMA_VERSION + 1, 'at': 0})})
    b = agents(b'agent-b')
    b.rebalance()
    assert b.workers == {}
    assert ('This agent drives no cluster: the state store holds key layout '
            'version %d, newer than this multilb reads (%d)' % (
                keys.SCHEMA_VERSION + 1, keys.SCHEMA_VERSION)) in caplog.text
