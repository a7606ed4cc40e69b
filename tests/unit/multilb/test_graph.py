"""Graph helpers (multilb/graph.py) on the shapes Octavia really hands over."""

import json

from octavia_lib.api.drivers import data_models as dm

from multilb import graph as graphs
from tests.unit import fixtures as fx
from tests.unit.fixtures import (  # noqa: H301
    HM, L_HTTP, L_TLS, LB, M1, M2, M3, POL_REDIRECT, POL_REJECT, POOL_API,
    POOL_WEB, R_ADMIN, R_API)


class TestFromOctavia:

    def test_get_loadbalancer_result_becomes_a_plain_complete_graph(self):
        got = fx.get_lb()
        # The shape DriverLibrary really returns: a model on top, dicts below.
        assert isinstance(got, dm.LoadBalancer)
        assert isinstance(got.listeners[0], dict)
        assert isinstance(got.listeners[0]['default_pool'], dict)

        graph = graphs.from_octavia(got)

        json.dumps(graph)   # plain data only
        assert graph['loadbalancer_id'] == LB
        http, tls = graph['listeners']
        assert 'default_pool' not in http    # the partial copy is dropped
        assert http['default_pool_id'] == POOL_WEB
        assert [p['l7policy_id'] for p in http['l7policies']] == [
            POL_REDIRECT, POL_REJECT]
        assert [r['value'] for r in http['l7policies'][0]['rules']] == [
            '/api']
        assert tls['l7policies'] == []
        web, api = graph['pools']
        assert [m['member_id'] for m in web['members']] == [M1, M2]
        assert web['healthmonitor']['url_path'] == '/healthz'
        assert api['healthmonitor'] is None
        # render_unsets turned Unset into None, and None stays None.
        assert graph['vip_qos_policy_id'] is None
        assert tls['default_tls_container_data']['private_key'] == \
            fx.PRIVATE_KEY

    def test_create_time_object_with_nested_models(self):
        graph = graphs.from_octavia(fx.create_lb())

        json.dumps(graph)
        http = graph['listeners'][0]
        assert 'default_pool' not in http
        assert http['l7policies'] == []     # create-time trap, kept as given
        web = graph['pools'][0]
        assert web['listener_id'] is None   # Unset -> None
        assert [m['member_id'] for m in web['members']] == [M1, M2]
        assert web['healthmonitor']['healthmonitor_id'] == HM

    def test_update_object_keeps_only_what_is_set(self):
        new = dm.Listener(listener_id=L_HTTP, connection_limit=100)
        plain = graphs.to_plain(new)
        assert plain['connection_limit'] == 100
        assert plain['name'] is None

    def test_empty_children_become_empty_lists(self):
        got = fx.as_get_result(dm.LoadBalancer(loadbalancer_id='bare',
                                               name='bare'))
        graph = graphs.from_octavia(got)
        assert graph['listeners'] == [] and graph['pools'] == []
        assert graphs.object_ids(graph) == {'bare': 'loadbalancer'}

    def test_policy_with_inline_redirect_pool_loses_the_copy(self):
        raw = fx.get_lb()
        raw.listeners[0]['l7policies'][0]['redirect_pool'] = {
            'pool_id': POOL_API}
        policy = graphs.from_octavia(raw)['listeners'][0]['l7policies'][0]
        assert 'redirect_pool' not in policy
        assert policy['redirect_pool_id'] == POOL_API


class TestWalking:

    def test_walk_yields_every_object_with_its_parent_lb_first(self):
        walked = [(t, i, p) for t, i, _o, p in graphs.walk(fx.lb_graph())]
        assert walked[0] == ('loadbalancer', LB, None)
        parents = {i: p for _t, i, p in walked}
        assert parents == {
            LB: None, L_HTTP: LB, L_TLS: LB, POL_REDIRECT: L_HTTP,
            POL_REJECT: L_HTTP, R_API: POL_REDIRECT, R_ADMIN: POL_REJECT,
            POOL_WEB: LB, POOL_API: LB, M1: POOL_WEB, M2: POOL_WEB,
            M3: POOL_API, HM: POOL_WEB}
        assert graphs.object_ids(fx.lb_graph()) == fx.ALL_IDS

    def test_find_and_parent_of(self):
        graph = fx.lb_graph()
        assert graphs.find(graph, M3)['address'] == '192.0.2.20'
        assert graphs.find(graph, LB) is graph
        assert graphs.find(graph, 'nope') is None
        assert graphs.parent_of(graph, R_ADMIN) == POL_REJECT
        assert graphs.parent_of(graph, 'nope') is None

    def test_descendants(self):
        graph = fx.lb_graph()
        assert graphs.descendants(graph, L_HTTP) == {
            POL_REDIRECT: 'l7policy', POL_REJECT: 'l7policy',
            R_API: 'l7rule', R_ADMIN: 'l7rule'}
        assert graphs.descendants(graph, POOL_WEB) == {
            M1: 'member', M2: 'member', HM: 'healthmonitor'}
        assert graphs.descendants(graph, POL_REJECT) == {R_ADMIN: 'l7rule'}
        assert graphs.descendants(graph, M1) == {}
        everything = dict(fx.ALL_IDS)
        del everything[LB]
        assert graphs.descendants(graph, LB) == everything

    def test_pool_members(self):
        assert graphs.pool_members(fx.lb_graph()) == {
            POOL_WEB: [M1, M2], POOL_API: [M3]}


class TestPoolListenerIds:
    """The listeners Octavia locks for a pool operation."""

    def test_default_pool_and_l7_redirect_with_rules(self):
        graph = fx.lb_graph()
        assert graphs.pool_listener_ids(graph, POOL_WEB) == [L_HTTP]
        assert graphs.pool_listener_ids(graph, POOL_API) == [L_HTTP]
        assert graphs.pool_listener_ids(graph, 'unknown') == []

    def test_redirect_without_rules_does_not_lock_the_listener(self):
        graph = fx.lb_graph()
        graph['listeners'][0]['l7policies'][0]['rules'] = []
        assert graphs.pool_listener_ids(graph, POOL_API) == []

    def test_disabled_redirect_does_not_lock_the_listener(self):
        graph = fx.lb_graph()
        graph['listeners'][0]['l7policies'][0]['admin_state_up'] = False
        assert graphs.pool_listener_ids(graph, POOL_API) == []

    def test_listener_counted_once_and_each_listener_found(self):
        graph = fx.lb_graph()
        # The TLS listener redirects to the web pool as well.
        graph['listeners'][1]['l7policies'] = [{
            'l7policy_id': 'pol-tls', 'redirect_pool_id': POOL_WEB,
            'admin_state_up': True, 'rules': [{'l7rule_id': 'r-tls'}]}]
        graph['listeners'][0]['l7policies'][0]['redirect_pool_id'] = POOL_WEB
        assert graphs.pool_listener_ids(graph, POOL_WEB) == [L_HTTP, L_TLS]


class TestPrune:

    def test_pruning_a_pool_takes_members_monitor_and_default_pool_ref(self):
        graph = fx.lb_graph()
        pruned = graphs.prune(graph, [POOL_WEB])
        assert [p['pool_id'] for p in pruned['pools']] == [POOL_API]
        assert pruned['listeners'][0]['default_pool_id'] is None
        assert set(graphs.object_ids(pruned)) == set(fx.ALL_IDS) - {
            POOL_WEB, M1, M2, HM}

    def test_pruning_a_listener_takes_its_policies_and_rules(self):
        pruned = graphs.prune(fx.lb_graph(), [L_HTTP])
        assert set(graphs.object_ids(pruned)) == set(fx.ALL_IDS) - {
            L_HTTP, POL_REDIRECT, POL_REJECT, R_API, R_ADMIN}

    def test_pruning_leaves(self):
        pruned = graphs.prune(fx.lb_graph(), [M2, HM, R_ADMIN, POL_REDIRECT])
        assert set(graphs.object_ids(pruned)) == set(fx.ALL_IDS) - {
            M2, HM, R_ADMIN, POL_REDIRECT, R_API}
        web = pruned['pools'][0]
        assert web['healthmonitor'] is None
        assert [m['member_id'] for m in web['members']] == [M1]
        assert [p['l7policy_id'] for p in
                pruned['listeners'][0]['l7policies']] == [POL_REJECT]
        assert pruned['listeners'][0]['l7policies'][0]['rules'] == []

    def test_prune_does_not_touch_the_original(self):
        graph = fx.lb_graph()
        before = json.dumps(graph, sort_keys=True)
        graphs.prune(graph, [POOL_WEB, L_HTTP, M3])
        assert json.dumps(graph, sort_keys=True) == before

    def test_prune_nothing_is_an_equal_copy(self):
        graph = fx.lb_graph()
        pruned = graphs.prune(graph, [])
        assert pruned == graph and pruned is not graph
