"""The cluster monitor (multilb/monitor.py): operating status and listener
statistics sent to Octavia, with the FAKE backend's injected health
verdicts and counters, a real sqlite store and a fake Octavia."""

import pytest

from multilb import monitor as monitor_mod
from multilb import octavia as octavia_mod
from tests.unit import fixtures as fx


@pytest.fixture
def monitored(env, settings):
    """``env`` with its sample LB ACTIVE, applied under a monitor."""
    env.worker.monitor = monitor_mod.ClusterMonitor(
        'alpha', env.worker.backend, env.state, env.octavia, settings)
    env.create_active()
    return env


def new_monitor(env, settings):
    """What a restarted (or another) agent builds for the cluster."""
    return monitor_mod.ClusterMonitor('alpha', env.worker.backend, env.state,
                                      env.octavia, settings)


def operating(env):
    return fx.flatten(env.octavia.statuses, 'operating_status')


def test_a_failing_member_turns_error_and_the_lb_degraded(monitored):
    env, monitor = monitored, monitored.worker.monitor
    monitor.poll_health()
    assert operating(env)[('members', fx.M1)] == 'ONLINE'
    # the worker reported the LB ONLINE when it applied it: not sent again
    assert ('loadbalancers', fx.LB) not in operating(env)

    env.octavia.statuses.clear()
    env.faults(members_down=[fx.M1])
    monitor.poll_health()
    assert operating(env) == {
        ('members', fx.M1): 'ERROR', ('pools', fx.POOL_WEB): 'DEGRADED',
        ('listeners', fx.L_HTTP): 'DEGRADED',
        ('loadbalancers', fx.LB): 'DEGRADED'}
    assert fx.flatten(env.octavia.statuses) == {}   # provisioning untouched

    env.octavia.statuses.clear()
    monitor.poll_health()
    assert env.octavia.statuses == []   # nothing changed, nothing sent

    env.faults()
    monitor.poll_health()
    assert operating(env)[('loadbalancers', fx.LB)] == 'ONLINE'
    assert operating(env)[('members', fx.M1)] == 'ONLINE'


def test_a_failover_report_keeps_what_health_knows(monitored):
    env, monitor = monitored, monitored.worker.monitor
    env.faults(members_down=[fx.M2])
    monitor.poll_health()
    env.driver.loadbalancer_failover(fx.LB)
    env.process()
    last = env.octavia.statuses[-1]
    assert fx.flatten(last)[('loadbalancers', fx.LB)] == 'ACTIVE'
    # the failover's own report re-sends every operating status: it must
    # not claim ONLINE for a degraded load balancer
    assert fx.flatten(last, 'operating_status')[('loadbalancers', fx.LB)] \
        == 'DEGRADED'
    assert operating(env)[('members', fx.M2)] == 'ERROR'


def test_a_restarted_agent_fetches_graphs_and_reports_health(
        monitored, settings):
    env = monitored
    env.faults(members_down=[fx.M1, fx.M2])
    monitor = new_monitor(env, settings)
    monitor.poll_health()
    assert operating(env)[('pools', fx.POOL_WEB)] == 'ERROR'


def listener_counters(env, **values):
    env.faults(counters={fx.L_HTTP: values})


def test_totals_are_monotonic_across_appliance_resets(monitored):
    env, monitor = monitored, monitored.worker.monitor
    listener_counters(env, bytes_in=0, total_connections=0)
    monitor.poll_statistics()      # the fake's first reading
    listener_counters(env, bytes_in=1000, bytes_out=4000, request_errors=1,
                      total_connections=10, active_connections=3)
    monitor.poll_statistics()
    row = env.octavia.listener_stats()[fx.L_HTTP]
    assert row == {'id': fx.L_HTTP, 'bytes_in': 1000, 'bytes_out': 4000,
                   'request_errors': 1, 'total_connections': 10,
                   'active_connections': 3}
    # the appliance restarts: its counters start again from zero
    listener_counters(env, bytes_in=200, total_connections=2)
    monitor.poll_statistics()
    row = env.octavia.listener_stats()[fx.L_HTTP]
    assert (row['bytes_in'], row['bytes_out'], row['total_connections'],
            row['active_connections']) == (1200, 4000, 12, 0)
    assert env.state.get_statistics(fx.LB)[fx.L_HTTP]['bytes_in'] == 1200


def test_nothing_new_is_not_sent_again(monitored):
    env, monitor = monitored, monitored.worker.monitor
    listener_counters(env, bytes_in=0)
    monitor.poll_statistics()
    listener_counters(env, bytes_in=10)
    monitor.poll_statistics()
    sent = len(env.octavia.statistics)
    monitor.poll_statistics()
    assert len(env.octavia.statistics) == sent


def test_another_agent_continues_the_stored_totals(monitored, settings):
    env, monitor = monitored, monitored.worker.monitor
    listener_counters(env, bytes_in=0)
    monitor.poll_statistics()
    listener_counters(env, bytes_in=500)
    monitor.poll_statistics()
    successor = new_monitor(env, settings)
    listener_counters(env, bytes_in=800)
    successor.poll_statistics()
    assert env.octavia.listener_stats()[fx.L_HTTP]['bytes_in'] == 800


def test_octavia_down_loses_no_traffic(monitored):
    env, monitor = monitored, monitored.worker.monitor
    listener_counters(env, bytes_in=0)
    monitor.poll_statistics()
    listener_counters(env, bytes_in=70)
    env.octavia.update_errors.append(fx.OctaviaUnavailable('agent down'))
    with pytest.raises(fx.OctaviaUnavailable):
        monitor.poll_statistics()
    monitor.poll_statistics()
    assert env.octavia.listener_stats()[fx.L_HTTP]['bytes_in'] == 70


def test_deleting_the_lb_drops_its_totals(monitored):
    env, monitor = monitored, monitored.worker.monitor
    listener_counters(env, bytes_in=0)
    monitor.poll_statistics()
    listener_counters(env, bytes_in=30)
    monitor.poll_statistics()
    assert env.state.get_statistics(fx.LB)
    env.driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    env.process()
    assert env.state.get_statistics(fx.LB) == {}
    listener_counters(env, bytes_in=60)
    monitor.poll_statistics()
    assert env.state.get_statistics(fx.LB) == {}


def _health_change(lb_id):
    status = {'loadbalancers': [{'id': lb_id, 'operating_status': 'ONLINE'}],
              'members': [{'id': lb_id + '-m', 'operating_status': 'ERROR'}]}
    return lb_id, status, {('members', lb_id + '-m'): 'ERROR'}


def test_operating_statuses_of_several_lbs_share_one_call(monitored):
    env, monitor = monitored, monitored.worker.monitor
    calls = env.octavia.update_attempts
    monitor._send_health([_health_change('lb-%d' % n) for n in range(3)])
    assert env.octavia.update_attempts - calls == 1
    assert operating(env) == {('loadbalancers', 'lb-%d' % n): 'ONLINE'
                              for n in range(3)} | {
        ('members', 'lb-%d-m' % n): 'ERROR' for n in range(3)}


def test_a_refused_batch_is_sent_again_one_lb_at_a_time(monitored):
    env, monitor = monitored, monitored.worker.monitor
    calls = env.octavia.update_attempts
    env.octavia.update_errors.append(
        octavia_mod.StatusRejected('members lb-1-m: no such member'))
    monitor._send_health([_health_change('lb-%d' % n) for n in range(3)])
    assert env.octavia.update_attempts - calls == 4
    assert len(env.octavia.statuses) == 3


def test_health_of_deleted_members_is_not_kept(monitored):
    """An agent's memory does not grow with the members that come and go
    (churn): the verdicts kept are those of members still held."""
    env, monitor = monitored, monitored.worker.monitor
    monitor.poll_health()
    assert {fx.M1, fx.M2} <= set(monitor._verdicts)
    graph = env.committed()
    for pool in graph['pools']:
        pool['members'] = [m for m in pool['members']
                           if m['member_id'] != fx.M2]
    monitor.remember(fx.LB, graph)          # the worker applied M2's removal
    monitor.poll_health()
    assert fx.M1 in monitor._verdicts and fx.M2 not in monitor._verdicts
    env.driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    env.process()
    monitor.poll_health()
    assert monitor._verdicts == {}
