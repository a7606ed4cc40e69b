"""Fencing (multilb/fencing.py): an agent that lost its cluster to another
agent writes nothing more to the cluster and records nothing.

The worker of cluster 'alpha' runs fenced with agent-a's claim; the test
plays agent-b taking the cluster over (its claim of ``owner/alpha``) while
agent-a was stalled.
"""

import pytest
from octavia_lib.api.drivers import data_models as dm

from multilb import exceptions
from multilb import fencing
from multilb import monitor as monitor_mod
from multilb import worker as worker_mod
from tests.unit import fixtures as fx
from tests.unit.fixtures import LB, M1, POOL_WEB


def _claim(env, agent):
    ownership = fencing.Ownership(env.state.kv, 'alpha', agent)
    return ownership, ownership.claim()


@pytest.fixture
def fenced(env, settings):
    """env whose worker is agent-a's fenced worker of 'alpha'."""
    ownership, previous = _claim(env, 'agent-a')
    assert previous is None
    backend = env.worker.backend
    env.worker = worker_mod.ClusterWorker(
        env.rt.clusters.clusters['alpha'], env.state, env.octavia,
        settings, fence=ownership)
    env.worker.backend = backend
    return env


def test_a_claim_fences_the_previous_owner(env):
    a, _ = _claim(env, 'agent-a')
    a.verify()
    b, previous = _claim(env, 'agent-b')
    assert previous['agent'] == 'agent-a'
    b.verify()
    with pytest.raises(exceptions.Fenced, match='now driven by agent '
                       'agent-b'):
        a.verify()
    assert fencing.owners(env.state.kv)['alpha']['agent'] == 'agent-b'


def test_a_fenced_completion_commits_nothing(fenced):
    fenced.create_active()
    fenced.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                                dm.Member(member_id=M1, weight=5))
    intents = fenced.pending()
    _claim(fenced, 'agent-b')

    with pytest.raises(exceptions.Fenced):
        fenced.worker.state.complete(LB, 'alpha', intents, status={
            'members': [{'id': M1, 'provisioning_status': 'ACTIVE'}]})

    assert fenced.pending() == intents           # still there for agent-b
    assert fenced.state.outbox('alpha') == []


def test_an_agent_that_lost_the_cluster_writes_nothing(fenced):
    fenced.create_active()
    fenced.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                                dm.Member(member_id=M1, weight=5))
    fenced.committed()['pools'][0]['members'][0]['weight'] = 5
    _claim(fenced, 'agent-b')                    # while agent-a stalled

    fenced.worker._job(LB)                       # agent-a resumes

    assert fenced.worker.fenced
    weights = [m['weight'] for m in fenced.appliance()['pools'][0]['members']]
    assert weights == [1, 1]                     # no write to the cluster
    assert fenced.octavia.statuses == []         # nothing reported
    assert len(fenced.pending()) == 1            # left for agent-b


def test_a_scan_after_a_takeover_stops_the_worker(fenced):
    fenced.create_active()
    _claim(fenced, 'agent-b')
    with pytest.raises(exceptions.Fenced):
        fenced.worker.scan()
    fenced.worker.fence_lost(exceptions.Fenced('taken'))
    assert fenced.worker.fenced and fenced.worker._stop.is_set()


def test_a_store_that_cannot_tell_means_no_write(fenced, monkeypatch):
    fenced.create_active()
    fenced.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                                dm.Member(member_id=M1, weight=5))
    fenced.committed()['pools'][0]['members'][0]['weight'] = 5
    real_get = fenced.state.kv.get

    def partitioned(key):
        if key.startswith(fencing.PREFIX):
            raise exceptions.StoreUnavailable('etcd unreachable')
        return real_get(key)

    monkeypatch.setattr(fenced.state.kv, 'get', partitioned)
    fenced.worker._job(LB)
    assert [m['weight'] for m in fenced.appliance()['pools'][0][
        'members']] == [1, 1]
    assert fenced.octavia.statuses == [] and not fenced.worker.fenced
    monkeypatch.setattr(fenced.state.kv, 'get', real_get)
    fenced.worker._not_before.clear()
    fenced.worker._job(LB)                       # reachable again: applied
    assert fenced.appliance()['pools'][0]['members'][0]['weight'] == 5


def test_a_late_write_is_repaired_by_the_new_owner(fenced, settings,
                                                   monkeypatch):
    fenced.create_active()
    fenced.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                                dm.Member(member_id=M1, weight=5))
    fenced.committed()['pools'][0]['members'][0]['weight'] = 5
    cluster = fenced.rt.clusters.clusters['alpha']
    owner = {}

    def b_takes_over_and_works():
        ownership = _claim(fenced, 'agent-b')[0]
        b = worker_mod.ClusterWorker(cluster, fenced.state, fenced.octavia,
                                     settings, fence=ownership)
        b.backend = cluster.backend_class(cluster)
        b.process(LB, fenced.state.pending('alpha')[LB])     # weight 5
        fenced.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                                    dm.Member(member_id=M1, weight=9))
        fenced.committed()['pools'][0]['members'][0]['weight'] = 9
        b.process(LB, fenced.state.pending('alpha')[LB])     # weight 9
        owner['b'] = b

    real_apply = fenced.worker.backend.apply_loadbalancer

    def stalled_mid_write(graph):
        b_takes_over_and_works()      # while agent-a is stalled here...
        real_apply(graph)             # ...then a's older write lands

    monkeypatch.setattr(fenced.worker.backend, 'apply_loadbalancer',
                        stalled_mid_write)
    fenced.worker._job(LB)
    weight = fenced.appliance()['pools'][0]['members'][0]['weight']
    assert (fenced.worker.fenced, weight) == (True, 5)     # stale
    assert [lb for _k, lb, agent in fencing.late_writes(
        fenced.state.kv, 'alpha')] == [LB]

    b = owner['b']
    b.probe(force=True)                          # b finds the late write
    b.process(LB, fenced.state.pending('alpha')[LB])

    assert fenced.appliance()['pools'][0]['members'][0]['weight'] == 9
    assert fencing.late_writes(fenced.state.kv, 'alpha') == []
    assert fenced.state.pending('alpha') == {}
    # agent-a recorded nothing: each status came from agent-b, once
    assert [s['members'][0]['id'] for s in fenced.octavia.statuses] == [
        M1, M1]


def test_a_stalled_monitor_reports_nothing_after_a_takeover(fenced,
                                                            settings):
    fenced.create_active()
    ownership, _ = _claim(fenced, 'agent-a2')
    monitor = monitor_mod.ClusterMonitor(
        'alpha', fenced.worker.backend, fenced.state, fenced.octavia,
        settings, fence=ownership)
    fenced.faults(counters={fx.L_HTTP: {'bytes_in': 0}})
    monitor._guarded(monitor.poll_statistics)       # the first reading
    fenced.faults(counters={fx.L_HTTP: {'bytes_in': 100}})
    monitor._guarded(monitor.poll_statistics)
    assert fenced.octavia.listener_stats()[fx.L_HTTP]['bytes_in'] == 100
    _claim(fenced, 'agent-b')
    fenced.faults(counters={fx.L_HTTP: {'bytes_in': 300}})
    monitor._guarded(monitor.poll_statistics)
    assert fenced.octavia.listener_stats()[fx.L_HTTP]['bytes_in'] == 100
    assert fenced.state.get_statistics(LB)[fx.L_HTTP]['bytes_in'] == 100
    assert monitor._stop.is_set()
