"""Operating status rollup (multilb/health.py) on the sample graph.

The sample: listener L_HTTP (default pool POOL_WEB: M1, M2 and a health
monitor; an L7 redirect to POOL_API: M3, no monitor) and L_TLS (no pool).
"""

from multilb import graph as graphs
from multilb import health
from tests.unit import fixtures as fx


def rolled(graph=None, **verdicts):
    graph = graph or fx.lb_graph()
    found = health.rollup(graph, verdicts)
    return {oid: value for (_type, oid), value in found.items()}


def members(graph, *ids):
    return [m for p in graph['pools'] for m in p['members']
            if m['member_id'] in ids]


def test_all_members_pass():
    found = rolled(**{fx.M1: True, fx.M2: True})
    assert found[fx.LB] == found[fx.L_HTTP] == found[fx.POOL_WEB] == 'ONLINE'
    assert found[fx.M1] == found[fx.M2] == 'ONLINE'
    # M3's pool has no monitor
    assert found[fx.M3] == 'NO_MONITOR' and found[fx.POOL_API] == 'ONLINE'


def test_one_failing_member_degrades_its_pool_listener_and_lb():
    found = rolled(**{fx.M1: False, fx.M2: True})
    assert found[fx.M1] == 'ERROR' and found[fx.M2] == 'ONLINE'
    assert found[fx.POOL_WEB] == 'DEGRADED'
    assert found[fx.L_HTTP] == 'DEGRADED'
    assert found[fx.L_TLS] == 'ONLINE'     # it sends nothing to POOL_WEB
    assert found[fx.LB] == 'DEGRADED'


def test_every_member_failing_is_a_pool_error_and_a_degraded_lb():
    found = rolled(**{fx.M1: False, fx.M2: False})
    assert found[fx.POOL_WEB] == 'ERROR'
    assert found[fx.L_HTTP] == 'DEGRADED' and found[fx.LB] == 'DEGRADED'


def test_disabled_objects_are_offline_and_do_not_count():
    graph = fx.lb_graph()
    members(graph, fx.M1)[0]['admin_state_up'] = False
    found = rolled(graph, **{fx.M1: False, fx.M2: False})
    assert found[fx.M1] == 'OFFLINE'
    assert found[fx.POOL_WEB] == 'ERROR'   # every *enabled* member failed
    graph = fx.lb_graph(admin_state_up=False)
    graph['listeners'][1]['admin_state_up'] = False
    found = rolled(graph, **{fx.M1: True, fx.M2: True})
    assert found[fx.LB] == 'OFFLINE' and found[fx.L_TLS] == 'OFFLINE'


def test_members_without_a_verdict_are_not_reported():
    found = rolled(**{fx.M1: False})
    assert fx.M2 not in found
    # one failing, one unknown: not every member is known to fail
    assert found[fx.POOL_WEB] == 'DEGRADED'


def test_a_disabled_monitor_means_no_monitor():
    graph = fx.lb_graph()
    graph['pools'][0]['healthmonitor']['admin_state_up'] = False
    found = rolled(graph, **{fx.M1: False})
    assert found[fx.M1] == 'NO_MONITOR' and found[fx.LB] == 'ONLINE'


def test_redirect_pool_trouble_degrades_the_listener_using_it():
    graph = fx.lb_graph()
    graph['pools'][1]['healthmonitor'] = dict(
        graph['pools'][0]['healthmonitor'], healthmonitor_id='hm-api',
        pool_id=fx.POOL_API)
    found = rolled(graph, **{fx.M1: True, fx.M2: True, fx.M3: False})
    assert found[fx.POOL_API] == 'ERROR' and found[fx.L_HTTP] == 'DEGRADED'


def test_changes_lists_only_what_differs_from_what_octavia_shows():
    graph = fx.lb_graph()
    status, differ = health.changes(graph, {fx.M1: True, fx.M2: True}, {})
    shown = dict(differ)
    assert ('member', fx.M1) in shown and ('loadbalancer', fx.LB) in shown
    status, differ = health.changes(graph, {fx.M1: False, fx.M2: True},
                                    shown)
    assert fx.flatten(status, 'operating_status') == {
        ('members', fx.M1): 'ERROR', ('pools', fx.POOL_WEB): 'DEGRADED',
        ('listeners', fx.L_HTTP): 'DEGRADED',
        ('loadbalancers', fx.LB): 'DEGRADED'}
    assert all('provisioning_status' not in r
               for records in status.values() for r in records)


def test_overlay_corrects_a_status_the_agent_is_about_to_send():
    graph = fx.lb_graph()
    status = {'loadbalancers': [{'id': fx.LB, 'provisioning_status': 'ACTIVE',
                                 'operating_status': 'ONLINE'}],
              'members': [{'id': fx.M1, 'provisioning_status': 'ACTIVE'}],
              'pools': [{'id': fx.POOL_WEB,
                         'provisioning_status': 'DELETED'}]}
    health.overlay(status, graph, {fx.M1: False, fx.M2: True})
    assert status['loadbalancers'][0]['operating_status'] == 'DEGRADED'
    assert status['members'][0]['operating_status'] == 'ERROR'
    assert 'operating_status' not in status['pools'][0]


def test_observable_graph_keeps_no_tls_material():
    graph = fx.lb_graph()
    assert all(secret in repr(graph) for secret in fx.SECRETS)
    kept = health.observable(graph)
    assert not any(secret in repr(kept) for secret in fx.SECRETS)
    assert graphs.object_ids(kept) == graphs.object_ids(graph)
