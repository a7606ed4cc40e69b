"""The agent's sweep (multilb/sweep.py): what each cluster's worker used
to read and write on its own every few seconds, done once for all the
agent's clusters -- and still done.

Workers of cluster 'alpha' over the env's store (SQLite, which cannot
watch: the sweep is told ``watched`` where a test plays the etcd watch).
"""

import time
import types

import pytest

from multilb import exceptions
from multilb import fencing
from multilb import keys
from multilb import state as state_mod
from multilb import sweep as sweep_mod
from multilb import worker as worker_mod
from tests.unit import fixtures as fx
from tests.unit.fixtures import LB


def _claim(env, agent):
    ownership = fencing.Ownership(env.state.kv, 'alpha', agent)
    ownership.claim()
    return ownership


@pytest.fixture
def owned(env, settings):
    """env whose worker is agent-a's fenced worker of 'alpha', wired to an
    agent sweep (not started: the tests run its rounds)."""
    backend = env.worker.backend
    worker = worker_mod.ClusterWorker(
        env.rt.clusters.clusters['alpha'], env.state, env.octavia,
        settings, fence=_claim(env, 'agent-a'))
    worker.backend = backend
    env.worker = worker
    env.sweep = sweep_mod.AgentSweep(env.state, settings,
                                     lambda: {'alpha': worker},
                                     watched=True)
    worker.sweep = env.sweep
    worker.watched = True
    return env


def _count_commits(env, monkeypatch):
    commits = []
    real = env.state.kv.commit

    def counted(*args, **kwargs):
        commits.append(kwargs.get('puts') or (args[1] if len(args) > 1
                                              else {}))
        return real(*args, **kwargs)
    monkeypatch.setattr(env.state.kv, 'commit', counted)
    return commits


def test_health_of_many_clusters_is_one_commit(env, settings, monkeypatch):
    sweep = sweep_mod.AgentSweep(env.state, settings, dict, watched=True)
    for n in range(150):
        sweep.publish('c%03d' % n, {'reachable': n % 2 == 0, 'at': 1.0})
    sweep.publish('c000', {'reachable': False, 'at': 2.0})   # newer wins
    commits = _count_commits(env, monkeypatch)
    sweep.flush()
    assert [len(puts) for puts in commits] == [100, 50]   # etcd: <= 128
    health = env.state.cluster_runtime()
    assert health['c000']['health'] == {'reachable': False, 'at': 2.0}
    assert health['c149']['health']['reachable'] is False
    assert health['c148']['health']['reachable'] is True
    sweep.flush()                                  # nothing new: no commit
    assert len(commits) == 2


def test_a_probe_publishes_health_for_the_next_flush(owned):
    owned.worker.probe(force=True)
    assert not owned.state.cluster_runtime().get('alpha', {}).get('health')
    owned.sweep.flush()
    assert owned.state.cluster_runtime()['alpha']['health']['reachable']


def test_health_not_written_is_kept_for_the_next_flush(env, settings,
                                                       monkeypatch):
    sweep = sweep_mod.AgentSweep(env.state, settings, dict, watched=True)
    sweep.publish('alpha', {'reachable': True, 'at': 1.0})
    sweep.publish('beta', {'reachable': True, 'at': 1.0})
    real = env.state.kv.commit

    def down(*args, **kwargs):
        raise exceptions.StoreUnavailable('etcd restarting')
    monkeypatch.setattr(env.state.kv, 'commit', down)
    sweep._guarded(sweep.flush)                    # logged, not raised
    sweep.publish('alpha', {'reachable': False, 'at': 2.0})
    monkeypatch.setattr(env.state.kv, 'commit', real)
    sweep.flush()
    health = env.state.cluster_runtime()
    assert health['alpha']['health'] == {'reachable': False, 'at': 2.0}
    assert health['beta']['health'] == {'reachable': True, 'at': 1.0}


def test_an_idle_worker_that_lost_its_cluster_stops(owned):
    """A stalled agent's idle worker does not scan (nothing to do), so
    nothing of its own would notice the takeover: the sweep does."""
    owned.worker.scan()
    assert owned.worker.idle and not owned.worker._scan_due(woken=False)
    owned.sweep.sweep()
    assert not owned.worker.fenced
    _claim(owned, 'agent-b')
    owned.sweep.sweep()
    assert owned.worker.fenced and owned.worker._stop.is_set()


def _later(monkeypatch, seconds):
    """The sweep's clock, ``seconds`` ahead."""
    real = time.time_ns
    monkeypatch.setattr(sweep_mod, 'time', types.SimpleNamespace(
        time_ns=lambda: real() + int(seconds * 1e9),
        monotonic=time.monotonic))


def test_an_idle_worker_is_woken_for_work_a_watch_missed(owned,
                                                         monkeypatch):
    owned.worker.scan()
    assert owned.worker.idle
    owned.sweep.sweep()
    assert not owned.worker._wake.is_set()         # nothing waiting
    owned.driver.loadbalancer_create(fx.create_lb())   # watch missed it
    owned.sweep.sweep()
    assert not owned.worker._wake.is_set()         # may be on its way
    _later(monkeypatch, sweep_mod.IN_FLIGHT)
    owned.sweep.sweep()
    assert owned.worker._wake.is_set()


def test_an_undelivered_status_wakes_an_idle_worker(owned, monkeypatch):
    owned.create_active()
    owned.worker.scan()
    assert owned.worker.idle
    owned.state.kv.commit(puts={
        keys.outbox_prefix('alpha') + state_mod.new_seq():
        '{"lb": "%s", "status": {}}' % LB})
    _later(monkeypatch, sweep_mod.IN_FLIGHT)
    owned.sweep.sweep()
    assert owned.worker._wake.is_set()


def test_late_writes_are_handed_to_the_owner_once(owned):
    owned.create_active()
    fencing.report_late_write(owned.state.kv, 'alpha', LB, 'agent-old')
    fencing.report_late_write(owned.state.kv, 'other', LB, 'agent-old')
    owned.worker.probe(force=True)
    assert owned.state.pending('alpha') == {}      # not swept yet
    owned.sweep.sweep()
    owned.worker.probe(force=True)
    assert [i['op'] for i in owned.state.pending('alpha')[LB]] == ['sync']
    assert fencing.late_writes(owned.state.kv, 'alpha') == []
    assert owned.sweep.take_late('alpha') == []
    # a cluster this agent does not drive keeps its record for its owner
    assert [lb for _k, lb, _a in fencing.late_writes(
        owned.state.kv, 'other')] == [LB]
