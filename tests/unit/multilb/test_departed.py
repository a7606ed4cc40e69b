"""A cluster removed from the configuration with load balancers on it
(multilb/departed.py, the driver's refusals, the agent's DepartedWorker).

The sample load balancer is placed on cluster 'alpha'; then the operator
restarts with a configuration where 'alpha' is gone (or broken), over the
same state store. Tenants must still be able to delete it.
"""

import logging
import time

import pytest
from octavia_lib.api.drivers import exceptions as lib_exc

from multilb import agent as agent_mod
from multilb import coordination
from multilb import departed
from multilb import driver as driver_mod
from tests.unit import fixtures as fx
from tests.unit.fixtures import LB, M1, POOL_WEB, reported

OTHER = {'beta': {}}


def _reconfigure(env, monkeypatch, clusters=OTHER, **kwargs):
    """The same store under a configuration without 'alpha' in service."""
    rt = fx.use_runtime(monkeypatch, fx.make_runtime(
        env.tmp_path, clusters, name='after.conf', **kwargs))
    return rt, driver_mod.MultiLBProviderDriver()


def _departed_worker(env, rt):
    worker = agent_mod.DepartedWorker('alpha', rt.state, env.octavia,
                                      rt.conf.multilb)
    worker.backend = departed.DepartedBackend(worker.cluster)
    return worker


def test_a_removed_cluster_is_departed_while_it_holds_lbs(env, monkeypatch):
    env.create_active()
    rt, _driver = _reconfigure(env, monkeypatch)
    assert departed.names(rt.state, rt.clusters) == {'alpha'}
    # still configured, or configured but broken: not departed
    assert departed.names(env.rt.state, env.rt.clusters) == set()
    broken, _ = _reconfigure(env, monkeypatch,
                             {'alpha': {'backend': 'no-such-backend'}})
    assert 'alpha' in broken.clusters.errors
    assert departed.names(broken.state, broken.clusters) == set()


def test_only_deleting_is_taken_for_a_departed_clusters_lb(env, monkeypatch):
    env.create_active()
    rt, driver = _reconfigure(env, monkeypatch)

    with pytest.raises(lib_exc.DriverError) as refused:
        driver.member_create(fx.member('member-9', POOL_WEB, '192.0.2.40'))
    assert 'can only be deleted' in refused.value.user_fault_string
    assert 'alpha' in refused.value.operator_fault_string
    with pytest.raises(lib_exc.DriverError, match='only'):
        driver.loadbalancer_failover(LB)
    assert rt.state.pending('alpha') == {}

    driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    [intent] = rt.state.pending('alpha')[LB]
    assert (intent['op'], intent['type']) == ('delete', 'loadbalancer')


def test_a_broken_cluster_section_takes_no_delete(env, monkeypatch):
    env.create_active()
    _rt, driver = _reconfigure(env, monkeypatch,
                               {'alpha': {'backend': 'no-such-backend'}})
    with pytest.raises(lib_exc.DriverError) as refused:
        driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    assert 'no-such-backend' in refused.value.operator_fault_string
    assert 'contact your cloud operator' in refused.value.user_fault_string


def test_deleting_releases_everything_without_touching_the_appliance(
        env, monkeypatch, caplog):
    env.create_active()
    rt, driver = _reconfigure(env, monkeypatch)
    driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    worker = _departed_worker(env, rt)

    with caplog.at_level(logging.WARNING, logger='multilb.departed'):
        worker.process(LB, rt.state.pending('alpha')[LB])

    assert reported(env) == {oid: fx.DELETED for oid in fx.ALL_IDS}
    assert rt.state.get_lb(LB) is None
    assert rt.state.lookup(M1) is None
    assert rt.state.cluster_counts().get('alpha', (0, None))[0] == 0
    assert rt.state.project_counts(fx.PROJECT).get('alpha', (0,))[0] == 0
    # the appliance was not reached: its copy is still there, and the
    # operator is told so, with the LB and the cluster
    assert env.appliance() is not None
    [warning] = [r for r in caplog.records if r.name == 'multilb.departed']
    assert LB in warning.getMessage() and 'alpha' in warning.getMessage()
    # nothing is left, so the cluster is no longer departed
    assert departed.names(rt.state, rt.clusters) == set()


def test_a_change_recorded_before_the_removal_ends_in_error(env, monkeypatch):
    env.weight_update(appliance_down=False)     # recorded, not yet applied
    rt, _driver = _reconfigure(env, monkeypatch)
    worker = _departed_worker(env, rt)

    worker.process(LB, rt.state.pending('alpha')[LB])

    assert reported(env)[M1] == fx.ERROR
    assert reported(env)[LB] == fx.ACTIVE
    assert rt.state.get_lb(LB)['cluster'] == 'alpha'    # still deletable


def test_an_agent_runs_the_departed_cluster_until_nothing_is_left(
        env, monkeypatch):
    env.create_active()
    rt, driver = _reconfigure(env, monkeypatch,
                              options={'poll_interval': 0.05})
    fx.create_agent_group(rt.conf.multilb.coordination_url)
    agent = agent_mod.Agent(rt, env.octavia, coordination.Coordinator(
        rt.conf.multilb.coordination_url, member_id=b'agent-a'))
    agent.start()
    try:
        agent.rebalance()
        assert sorted(agent.workers) == ['alpha', 'beta']
        assert isinstance(agent.workers['alpha'], agent_mod.DepartedWorker)

        driver.loadbalancer_delete(fx.full_lb(), cascade=True)
        deadline = time.monotonic() + 10
        while reported(env).get(LB) != fx.DELETED:
            assert time.monotonic() < deadline, 'the delete never ended'
            time.sleep(0.02)

        agent.rebalance()
        assert sorted(agent.workers) == ['beta']
        assert agent.coordinator.held() == {'beta'}
    finally:
        agent.stop()
