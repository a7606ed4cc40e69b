"""Statuses exactly Octavia's (issue: the tempest API suite against multilb).

Each test is one rule the octavia-tempest-plugin API suite checks and an
earlier multilb broke:

* a cluster without a data plane to observe reports operating statuses the
  way Octavia's amphora driver does on no-op backends;
* a pool no listener uses is OFFLINE even where health is observed;
* a status is written only for objects the operation locked or whose status
  really changed (Octavia bumps ``updated_at`` on every write), and what was
  written is durable: a restarted agent does not write it again;
* values Octavia normalises do not stall the work;
* a give-up without Octavia's graph still unlocks the listeners.
"""

import pytest
from octavia_lib.api.drivers import data_models as dm

from multilb import monitor as monitor_mod
from multilb import status as statuses
from tests.unit import fixtures as fx
from tests.unit.fixtures import (  # noqa: H301
    HM, L_HTTP, L_TLS, LB, M1, M2, M3, POL_REDIRECT, POL_REJECT, POOL_API,
    POOL_WEB, R_ADMIN, R_API)
from tests.unit.fixtures import reported

ACTIVE, ERROR = fx.ACTIVE, fx.ERROR
ONLINE, OFFLINE = 'ONLINE', 'OFFLINE'


@pytest.fixture
def noop(tmp_path, monkeypatch, settings, clock):
    """A WorkerEnv whose fake cluster observes nothing (as tempest runs)."""
    env = fx.WorkerEnv(tmp_path, monkeypatch, settings, observes=False)
    env.worker.monitor = monitor_mod.ClusterMonitor(
        'alpha', env.worker.backend, env.state, env.octavia, settings)
    return env


def operating(env):
    return fx.flatten(env.octavia.statuses, 'operating_status')


def new_monitor(env, settings):
    return monitor_mod.ClusterMonitor('alpha', env.worker.backend, env.state,
                                      env.octavia, settings)


# -- no data plane: what the amphora driver leaves with no-op backends --------


def test_without_a_data_plane_only_monitors_and_l7_get_operating(noop):
    noop.driver.loadbalancer_create(fx.create_lb())
    noop.octavia.commit(fx.full_lb())
    noop.process()

    assert reported(noop) == {oid: ACTIVE for oid in fx.ALL_IDS}
    # LB, listeners, pools and members keep what the API set them to
    # (OFFLINE; NO_MONITOR/OFFLINE): nothing is written for them
    assert operating(noop) == {
        ('healthmonitors', HM): ONLINE,
        ('l7policies', POL_REDIRECT): ONLINE,
        ('l7policies', POL_REJECT): ONLINE,
        ('l7rules', R_API): ONLINE, ('l7rules', R_ADMIN): ONLINE}


def test_without_a_data_plane_a_disabled_monitor_or_rule_is_offline(noop):
    noop.driver.loadbalancer_create(fx.create_lb())
    noop.octavia.commit(fx.full_lb())
    noop.process()
    noop.octavia.statuses.clear()

    noop.driver.health_monitor_update(
        dm.HealthMonitor(healthmonitor_id=HM, pool_id=POOL_WEB),
        dm.HealthMonitor(healthmonitor_id=HM, admin_state_up=False))
    noop.committed()['pools'][0]['healthmonitor']['admin_state_up'] = False
    noop.process()

    assert operating(noop) == {('healthmonitors', HM): OFFLINE}
    assert reported(noop) == {HM: ACTIVE, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                              LB: ACTIVE}


def test_without_a_data_plane_the_monitor_sends_no_health(noop, settings):
    noop.driver.loadbalancer_create(fx.create_lb())
    noop.octavia.commit(fx.full_lb())
    noop.process()
    noop.octavia.statuses.clear()
    noop.faults(members_down=[M1])

    noop.worker.monitor.poll_health()

    assert noop.octavia.statuses == []


def test_a_pool_no_listener_uses_is_offline_where_health_is_observed():
    graph = fx.lb_graph()
    graph['listeners'] = []
    status = statuses.for_intents(
        [{'op': 'create', 'type': 'loadbalancer', 'id': LB}], graph,
        {'id': LB}, True, observes=True)
    found = fx.flatten(status, 'operating_status')
    assert found[('pools', POOL_WEB)] == OFFLINE
    assert found[('pools', POOL_API)] == OFFLINE
    assert found[('loadbalancers', LB)] == ONLINE


# -- only what was locked or really changed, durably --------------------------


def test_an_apply_does_not_make_the_monitor_write_unchanged_objects(
        env, settings):
    env.worker.monitor = new_monitor(env, settings)
    env.create_active()
    env.worker.monitor.poll_health()        # members get their verdicts
    env.octavia.statuses.clear()

    env.driver.listener_update(fx.listener(L_TLS, 'TERMINATED_HTTPS', 443),
                               dm.Listener(listener_id=L_TLS, name='tls2'))
    env.committed()['listeners'][1]['name'] = 'tls2'
    env.process()
    env.worker.monitor.poll_health()

    # the update's own report (listener and LB), and nothing else
    assert reported(env) == {L_TLS: ACTIVE, LB: ACTIVE}
    assert len(env.octavia.statuses) == 1


def test_a_restarted_agent_does_not_send_again_what_was_sent(env, settings):
    env.worker.monitor = new_monitor(env, settings)
    env.create_active()
    env.worker.monitor.poll_health()
    env.faults(members_down=[M2])
    env.worker.monitor.poll_health()
    env.octavia.statuses.clear()

    restarted = new_monitor(env, settings)
    restarted.poll_health()     # fetches the graph: nothing is cached
    restarted.poll_health()

    assert env.octavia.statuses == []
    assert env.state.get_sent(LB)[M2] == [ACTIVE, ERROR]

    env.faults()
    restarted.poll_health()
    assert operating(env) == {('members', M2): ONLINE,
                              ('pools', POOL_WEB): ONLINE,
                              ('listeners', L_HTTP): ONLINE,
                              ('loadbalancers', LB): ONLINE}


def test_what_was_sent_goes_with_the_load_balancer(env):
    env.create_active()
    assert env.state.get_sent(LB)[LB] == [ACTIVE, ONLINE]

    env.driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    env.process()

    assert env.state.get_sent(LB) == {}


def test_a_batch_reports_what_octavia_locked_only(env):
    env.create_active()
    env.octavia.statuses.clear()
    env.driver.member_batch_update(POOL_WEB, [
        fx.member(M1, POOL_WEB, '192.0.2.10')])
    pool = env.committed()['pools'][0]
    pool['members'] = [m for m in pool['members'] if m['member_id'] == M1]
    env.process()

    assert reported(env) == {M1: ACTIVE, M2: fx.DELETED, POOL_WEB: ACTIVE,
                             L_HTTP: ACTIVE, LB: ACTIVE}
    # the other pool, its member and the other listener are left alone
    assert not {POOL_API, M3, L_TLS} & set(reported(env))


# -- values Octavia normalises ---------------------------------------------


def test_an_l7_position_past_the_end_is_applied_without_waiting(env):
    env.create_active()
    env.driver.l7policy_update(
        dm.L7Policy(l7policy_id=POL_REDIRECT, listener_id=L_HTTP),
        dm.L7Policy(l7policy_id=POL_REDIRECT, position=7))
    # Octavia renumbers 1..n: stored as the last position, 2
    policies = env.committed()['listeners'][0]['l7policies']
    policies[0]['position'], policies[1]['position'] = 2, 1
    env.process()                          # no clock advance: no waiting

    assert reported(env)[POL_REDIRECT] == ACTIVE
    assert env.pending() == []


def test_an_l7_position_not_committed_yet_is_waited_for(env):
    env.create_active()
    env.driver.l7policy_update(
        dm.L7Policy(l7policy_id=POL_REDIRECT, listener_id=L_HTTP),
        dm.L7Policy(l7policy_id=POL_REDIRECT, position=7))
    env.process()                          # still position 1 in Octavia

    assert env.octavia.statuses == []
    assert len(env.pending()) == 1


def test_a_batch_whose_vnic_type_octavia_ignores_is_applied(env):
    env.create_active()
    env.driver.member_batch_update(POOL_WEB, [
        fx.member(M1, POOL_WEB, '192.0.2.10', vnic_type='direct'),
        fx.member(M2, POOL_WEB, '192.0.2.11', weight=3)])
    env.committed()['pools'][0]['members'][1]['weight'] = 3
    env.process()                          # vnic_type stays 'normal'

    assert reported(env)[M2] == ACTIVE
    assert env.appliance()['pools'][0]['members'][1]['weight'] == 3


def test_a_batch_not_all_shown_after_the_wait_is_still_reported(env, clock):
    env.create_active()
    env.driver.member_batch_update(POOL_WEB, [
        fx.member(M1, POOL_WEB, '192.0.2.10', weight=4),
        fx.member(M2, POOL_WEB, '192.0.2.11')])
    env.process()
    assert env.octavia.statuses == []

    clock.advance(61)                      # past commit_wait_timeout
    env.process()

    assert reported(env)[POOL_WEB] == ACTIVE
    assert reported(env)[LB] == ACTIVE
    assert env.pending() == []


# -- give-up without the graph ------------------------------------------------


@pytest.mark.parametrize('otype,oid,parent', [
    ('member', M1, POOL_WEB), ('healthmonitor', HM, POOL_WEB),
    ('pool', POOL_WEB, None), ('l7rule', R_API, POL_REDIRECT),
    ('l7policy', POL_REDIRECT, L_HTTP)])
def test_a_give_up_without_the_graph_unlocks_the_listeners(
        env, otype, oid, parent):
    env.create_active()
    record = env.state.get_lb(LB)
    intent = {'op': 'update', 'type': otype, 'id': oid}
    if parent:
        intent['parent'] = parent
    status = statuses.failure_from_intents(LB, [intent], record)
    found = fx.flatten(status)
    assert found[(('listeners', L_HTTP))] == ACTIVE
    assert found[('loadbalancers', LB)] == ACTIVE
    assert found[(statuses.graphs.STATUS_KEYS[otype], oid)] == ERROR
