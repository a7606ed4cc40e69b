"""The provider driver (multilb/driver.py): placement and recorded intents.

Everything is asserted through :class:`multilb.state.State` (what the agent
will find) or through the octavia-lib exception the API turns into the
user's error message.
"""

import json
import time

import pytest
from octavia_lib.api.drivers import data_models as dm
from octavia_lib.api.drivers import exceptions as lib_exc

from backends import exceptions as backend_exc
from backends.fake import backend as fake_backend
from multilb import exceptions
from multilb import graph as graphs
from multilb import keys
from multilb import registry
from multilb import runtime
from tests.unit import fixtures as fx
from tests.unit.fixtures import (  # noqa: H301
    HM, L_HTTP, L_TLS, LB, M1, M2, POL_REDIRECT, POL_REJECT, POOL_API,
    POOL_WEB, R_API)

M4 = 'member-4'


@pytest.fixture
def placed(make):
    """The sample LB placed on 'alpha' and made ACTIVE by the agent."""
    driver, rt = make({'alpha': {}})
    driver.loadbalancer_create(fx.create_lb())
    activate(rt, fx.lb_graph())
    return driver, rt


def activate(rt, graph, cluster='alpha'):
    """What the agent's completion of the pending intents records."""
    lb_id = graph['loadbalancer_id']
    record = rt.state.get_lb(lb_id)
    record['pools'] = graphs.pool_members(graph)
    rt.state.complete(lb_id, cluster, rt.state.pending(cluster)[lb_id],
                      record=record, index=graphs.object_ids(graph))


def intents(rt, cluster='alpha', lb_id=LB):
    """Pending intents without their bookkeeping keys."""
    return [{k: v for k, v in i.items()
             if k not in ('seq', 'at', '_key', 'project')}
            for i in rt.state.pending(cluster).get(lb_id, [])]


def bare_lb(lb_id, project='proj-1'):
    return dm.LoadBalancer(loadbalancer_id=lb_id, project_id=project,
                           name=lb_id, admin_state_up=True, flavor={},
                           availability_zone={}, listeners=[], pools=[])


def placed_count(rt, cluster):
    return rt.state.cluster_counts().get(cluster, (0, None))[0]


class BrokenKV:
    """A state store that cannot be reached."""

    def get(self, key):
        raise exceptions.StoreUnavailable('etcd: connection refused')

    get_prefix = get

    def commit(self, checks=None, puts=None, deletes=()):
        raise exceptions.StoreUnavailable('etcd: connection refused')


class LostReplyKV:
    """A state store whose next conditional commit is applied but whose
    reply is lost (etcd took the transaction, the answer timed out)."""

    def __init__(self, kv):
        self.kv, self.lost = kv, 1

    def __getattr__(self, name):
        return getattr(self.kv, name)

    def commit(self, checks=None, puts=None, deletes=()):
        done = self.kv.commit(checks=checks, puts=puts, deletes=deletes)
        if puts and self.lost:
            self.lost -= 1
            raise exceptions.StoreUnavailable(
                'etcd member 127.0.0.1:2379 did not answer within 5s')
        return done


# -- loadbalancer_create ------------------------------------------------------


def test_create_records_placement_count_index_and_intent(make):
    driver, rt = make({'alpha': {'max_loadbalancers': 5}})
    before = time.time()

    assert driver.loadbalancer_create(fx.create_lb()) is None

    record = rt.state.get_lb(LB)
    assert record['cluster'] == 'alpha'
    assert record['project_id'] == fx.PROJECT
    assert record['flavor'] == {} and record['availability_zone'] == {}
    assert record['pools'] == {POOL_WEB: [M1, M2], POOL_API: ['member-3']}
    assert placed_count(rt, 'alpha') == 1
    assert rt.state.cluster_lb_ids('alpha') == [LB]
    assert rt.state.lookup(LB) == (LB, 'loadbalancer')
    assert intents(rt) == [{'op': 'create', 'type': 'loadbalancer',
                            'id': LB}]
    [pending] = rt.state.pending('alpha')[LB]
    assert before <= pending['at'] <= time.time()
    assert pending['project'] == fx.PROJECT     # the agent queues fairly


def test_create_keeps_flavor_and_az_metadata(make):
    driver, rt = make({'alpha': {}})
    lb = bare_lb('lb-f')
    lb.flavor = {'size': 'small'}
    lb.availability_zone = {'zone': 'z1'}
    driver.loadbalancer_create(lb)
    record = rt.state.get_lb('lb-f')
    assert (record['flavor'], record['availability_zone']) == (
        {'size': 'small'}, {'zone': 'z1'})


def test_create_goes_to_the_cluster_with_most_room(make):
    driver, rt = make({'alpha': {'max_loadbalancers': 2},
                       'beta': {'max_loadbalancers': 3}})
    chosen = []
    for n in range(5):
        driver.loadbalancer_create(bare_lb('lb-%d' % n))
        chosen.append(rt.state.get_lb('lb-%d' % n)['cluster'])

    # beta has more free slots; equal free slots are a random pick; a full
    # cluster is skipped, so the fleet ends up exactly full.
    assert chosen[0] == 'beta'
    assert placed_count(rt, 'alpha') == 2 and placed_count(rt, 'beta') == 3


def test_unlimited_cluster_keeps_taking(make):
    driver, rt = make({'alpha': {'max_loadbalancers': 1}, 'zeta': {}})
    for n in range(4):
        driver.loadbalancer_create(bare_lb('lb-%d' % n))
    # zeta never fills up; alpha takes at most its one slot.
    assert placed_count(rt, 'zeta') >= 3
    assert placed_count(rt, 'alpha') + placed_count(rt, 'zeta') == 4


def test_all_clusters_full_is_an_error_and_reserves_nothing(make):
    driver, rt = make({'alpha': {'max_loadbalancers': 1},
                       'beta': {'max_loadbalancers': 1}})
    driver.loadbalancer_create(bare_lb('lb-a'))
    driver.loadbalancer_create(bare_lb('lb-b'))
    counts = rt.state.cluster_counts()

    with pytest.raises(lib_exc.DriverError) as err:
        driver.loadbalancer_create(fx.create_lb())

    assert 'No appliance cluster has room' in err.value.user_fault_string
    assert 'nothing was created' in err.value.user_fault_string
    assert 'alpha: full' in err.value.operator_fault_string
    assert 'beta: full' in err.value.operator_fault_string
    assert rt.state.cluster_counts() == counts
    assert rt.state.get_lb(LB) is None
    assert rt.state.lookup(LB) is None
    assert LB not in rt.state.pending('alpha')
    assert LB not in rt.state.pending('beta')


def test_no_cluster_in_service(make):
    driver, rt = make({'broken': {'backend': 'nosuch'}})
    with pytest.raises(lib_exc.DriverError) as err:
        driver.loadbalancer_create(fx.create_lb())
    assert 'No appliance cluster is in service' in \
        err.value.user_fault_string
    assert "unknown backend 'nosuch'" in err.value.operator_fault_string
    assert rt.state.get_lb(LB) is None


def test_retried_create_is_idempotent(make):
    driver, rt = make({'alpha': {}, 'beta': {}})
    driver.loadbalancer_create(fx.create_lb())
    driver.loadbalancer_create(fx.create_lb())

    [(cluster, (placed, _version))] = rt.state.cluster_counts().items()
    assert placed == 1
    assert intents(rt, cluster) == [{'op': 'create', 'type': 'loadbalancer',
                                     'id': LB}]


def test_create_stores_no_tls_secrets(make):
    driver, rt = make({'alpha': {}})
    driver.loadbalancer_create(fx.create_lb())
    text = fx.all_stored_text(rt.state)
    assert LB in text
    for secret in fx.SECRETS:
        assert secret not in text


# -- child operations record the right intent ---------------------------------

def MEMBER_FIELDS(member_id, address):
    """Every field fx.member() sets: additive batches pass full members."""
    return {'address': address, 'admin_state_up': True, 'backup': False,
            'monitor_address': None, 'monitor_port': None,
            'name': member_id, 'pool_id': POOL_WEB, 'project_id': 'proj-1',
            'protocol_port': 8080, 'subnet_id': None, 'vnic_type': 'normal',
            'weight': 1}


def BATCH_FIELDS(member_id, address):
    """What a batch update expects of a known member: Octavia never writes
    a batch-updated member's vnic_type, so it is not waited for."""
    fields = MEMBER_FIELDS(member_id, address)
    del fields['vnic_type']
    return fields


CHILD_OPS = {
    'listener_create': (
        lambda d: d.listener_create(fx.listener('listener-new', 'TCP', 22)),
        {'op': 'create', 'type': 'listener', 'id': 'listener-new'}),
    'listener_update': (
        lambda d: d.listener_update(
            fx.listener(L_HTTP),
            dm.Listener(listener_id=L_HTTP, connection_limit=100,
                        name='renamed')),
        {'op': 'update', 'type': 'listener', 'id': L_HTTP,
         'expect': {'connection_limit': 100, 'name': 'renamed'}}),
    'listener_delete': (
        lambda d: d.listener_delete(fx.listener(L_HTTP)),
        {'op': 'delete', 'type': 'listener', 'id': L_HTTP}),
    'pool_create_on_listener': (
        lambda d: d.pool_create(fx.pool('pool-new', listener_id=L_TLS)),
        {'op': 'create', 'type': 'pool', 'id': 'pool-new',
         'parent': L_TLS}),
    'pool_create_on_lb': (
        lambda d: d.pool_create(fx.pool('pool-new')),
        {'op': 'create', 'type': 'pool', 'id': 'pool-new'}),
    'pool_update': (
        lambda d: d.pool_update(
            fx.pool(POOL_WEB),
            dm.Pool(pool_id=POOL_WEB, lb_algorithm='SOURCE_IP')),
        {'op': 'update', 'type': 'pool', 'id': POOL_WEB,
         'expect': {'lb_algorithm': 'SOURCE_IP'}}),
    'pool_delete': (
        lambda d: d.pool_delete(fx.pool(POOL_WEB)),
        {'op': 'delete', 'type': 'pool', 'id': POOL_WEB}),
    'member_create': (
        lambda d: d.member_create(fx.member(M4, POOL_WEB, '192.0.2.12')),
        {'op': 'create', 'type': 'member', 'id': M4, 'parent': POOL_WEB}),
    'member_update': (
        lambda d: d.member_update(
            fx.member(M1, POOL_WEB, '192.0.2.10'),
            dm.Member(member_id=M1, weight=5, admin_state_up=False)),
        {'op': 'update', 'type': 'member', 'id': M1, 'parent': POOL_WEB,
         'expect': {'weight': 5, 'admin_state_up': False}}),
    'member_delete': (
        lambda d: d.member_delete(fx.member(M2, POOL_WEB, '192.0.2.11')),
        {'op': 'delete', 'type': 'member', 'id': M2, 'parent': POOL_WEB}),
    'health_monitor_create': (
        lambda d: d.health_monitor_create(
            fx.health_monitor('hm-api', POOL_API)),
        {'op': 'create', 'type': 'healthmonitor', 'id': 'hm-api',
         'parent': POOL_API}),
    'health_monitor_update': (
        lambda d: d.health_monitor_update(
            fx.health_monitor(),
            dm.HealthMonitor(healthmonitor_id=HM, delay=7,
                             url_path='/ready')),
        {'op': 'update', 'type': 'healthmonitor', 'id': HM,
         'parent': POOL_WEB, 'expect': {'delay': 7, 'url_path': '/ready'}}),
    'health_monitor_delete': (
        lambda d: d.health_monitor_delete(fx.health_monitor()),
        {'op': 'delete', 'type': 'healthmonitor', 'id': HM,
         'parent': POOL_WEB}),
    'l7policy_create': (
        lambda d: d.l7policy_create(fx.l7policy('pol-new', L_TLS, 'REJECT')),
        {'op': 'create', 'type': 'l7policy', 'id': 'pol-new',
         'parent': L_TLS}),
    'l7policy_update': (
        lambda d: d.l7policy_update(
            fx.l7policy(POL_REJECT, L_HTTP, 'REJECT', position=2),
            dm.L7Policy(l7policy_id=POL_REJECT, position=1)),
        {'op': 'update', 'type': 'l7policy', 'id': POL_REJECT,
         'parent': L_HTTP, 'expect': {'position': 1}}),
    'l7policy_delete': (
        lambda d: d.l7policy_delete(
            fx.l7policy(POL_REJECT, L_HTTP, 'REJECT')),
        {'op': 'delete', 'type': 'l7policy', 'id': POL_REJECT,
         'parent': L_HTTP}),
    'l7rule_create': (
        lambda d: d.l7rule_create(fx.l7rule('rule-new', POL_REJECT, '/x')),
        {'op': 'create', 'type': 'l7rule', 'id': 'rule-new',
         'parent': POL_REJECT}),
    'l7rule_update': (
        lambda d: d.l7rule_update(
            fx.l7rule(R_API, POL_REDIRECT, '/api'),
            dm.L7Rule(l7rule_id=R_API, value='/v2', invert=True)),
        {'op': 'update', 'type': 'l7rule', 'id': R_API,
         'parent': POL_REDIRECT, 'expect': {'value': '/v2', 'invert': True}}),
    'l7rule_delete': (
        lambda d: d.l7rule_delete(fx.l7rule(R_API, POL_REDIRECT, '/api')),
        {'op': 'delete', 'type': 'l7rule', 'id': R_API,
         'parent': POL_REDIRECT}),
    'member_batch_update': (
        lambda d: d.member_batch_update(POOL_WEB, [
            # matched: only the id, the match keys and what changed
            dm.Member(member_id=M1, pool_id=POOL_WEB, address='192.0.2.10',
                      protocol_port=8080, weight=3),
            fx.member(M4, POOL_WEB, '192.0.2.12')]),
        # the matched member's set fields are what the agent waits for
        {'op': 'batch', 'type': 'pool', 'id': POOL_WEB,
         'members': [M1, M4], 'deleted': [M2],
         'expect': {M1: {'address': '192.0.2.10', 'pool_id': POOL_WEB,
                         'protocol_port': 8080, 'weight': 3}}}),
    'member_batch_update_additive': (
        lambda d: d.member_batch_update(POOL_WEB, [
            fx.member(M1, POOL_WEB, '192.0.2.10'),
            fx.member(M2, POOL_WEB, '192.0.2.11'),
            fx.member(M4, POOL_WEB, '192.0.2.12')]),
        {'op': 'batch', 'type': 'pool', 'id': POOL_WEB,
         'members': [M1, M2, M4], 'deleted': [],
         'expect': {M1: BATCH_FIELDS(M1, '192.0.2.10'),
                    M2: BATCH_FIELDS(M2, '192.0.2.11')}}),
    'loadbalancer_update': (
        lambda d: d.loadbalancer_update(
            fx.full_lb(),
            dm.LoadBalancer(loadbalancer_id=LB, name='renamed',
                            admin_state_up=False)),
        {'op': 'update', 'type': 'loadbalancer', 'id': LB,
         'expect': {'name': 'renamed', 'admin_state_up': False}}),
    'loadbalancer_delete_cascade': (
        lambda d: d.loadbalancer_delete(fx.full_lb(), cascade=True),
        {'op': 'delete', 'type': 'loadbalancer', 'id': LB, 'cascade': True,
         'tree': {i: t for i, t in fx.ALL_IDS.items() if i != LB}}),
    'loadbalancer_delete': (
        lambda d: d.loadbalancer_delete(bare_lb(LB)),
        {'op': 'delete', 'type': 'loadbalancer', 'id': LB, 'cascade': False,
         'tree': {}}),
    'loadbalancer_failover': (
        lambda d: d.loadbalancer_failover(LB),
        {'op': 'failover', 'type': 'loadbalancer', 'id': LB}),
}


@pytest.mark.parametrize('name', list(CHILD_OPS))
def test_operation_records_one_intent(placed, name):
    driver, rt = placed
    call, expected = CHILD_OPS[name]
    before = time.time()

    assert call(driver) is None

    assert intents(rt) == [expected]
    [pending] = rt.state.pending('alpha')[LB]
    assert before <= pending['at'] <= time.time()
    # Placement is untouched.
    assert rt.state.get_lb(LB)['cluster'] == 'alpha'
    assert placed_count(rt, 'alpha') == 1


def test_intents_queue_in_order(placed):
    driver, rt = placed
    CHILD_OPS['member_update'][0](driver)
    CHILD_OPS['l7rule_delete'][0](driver)
    assert [(i['op'], i['type']) for i in intents(rt)] == [
        ('update', 'member'), ('delete', 'l7rule')]


def test_update_never_stores_tls_secrets(placed):
    driver, rt = placed
    new = dm.Listener(listener_id=L_TLS, default_tls_container_ref='ref-2',
                      default_tls_container_data=dict(fx.TLS_DATA),
                      sni_container_data=[dict(fx.TLS_DATA)])
    driver.listener_update(fx.listener(L_TLS), new)
    new_pool = dm.Pool(pool_id=POOL_WEB, tls_enabled=True,
                       tls_container_ref='ref-3',
                       tls_container_data=dict(fx.TLS_DATA))
    driver.pool_update(fx.pool(POOL_WEB), new_pool)

    listener_intent, pool_intent = intents(rt)
    assert listener_intent['expect'] == {'default_tls_container_ref':
                                         'ref-2'}
    assert pool_intent['expect'] == {'tls_enabled': True,
                                     'tls_container_ref': 'ref-3'}
    text = fx.all_stored_text(rt.state)
    for secret in fx.SECRETS:
        assert secret not in text


# -- refusals -----------------------------------------------------------------

UNKNOWN = {
    'listener on unknown lb': (
        lambda d: d.listener_create(fx.listener('l-x',
                                                loadbalancer_id='lb-x')),
        ['Load balancer lb-x is unknown']),
    'member of unknown pool': (
        lambda d: d.member_create(fx.member('m-x', 'pool-x', '192.0.2.9')),
        ['pool-x', 'unknown to the multilb provider']),
    'rule of unknown policy': (
        lambda d: d.l7rule_update(fx.l7rule('r-x', 'pol-x', '/'),
                                  dm.L7Rule(l7rule_id='r-x', value='/y')),
        ['pol-x', 'unknown to the multilb provider']),
    'batch of unknown pool': (
        lambda d: d.member_batch_update('pool-x', []),
        ['pool pool-x is unknown to the multilb provider']),
    'failover of unknown lb': (
        lambda d: d.loadbalancer_failover('lb-x'),
        ['Load balancer lb-x is unknown']),
}


@pytest.mark.parametrize('name', list(UNKNOWN))
def test_unknown_object_is_a_clear_error(placed, name):
    driver, rt = placed
    call, texts = UNKNOWN[name]
    with pytest.raises(lib_exc.DriverError) as err:
        call(driver)
    for text in texts:
        assert text in err.value.user_fault_string
    assert intents(rt) == []


def test_lb_on_a_cluster_out_of_service(placed, tmp_path, monkeypatch):
    driver, _rt = placed
    # The operator breaks alpha's section; the LB stays placed on alpha.
    rt = fx.use_runtime(monkeypatch, fx.make_runtime(
        tmp_path, {'alpha': {'max_loadbalancers': 'lots'}, 'beta': {}}))
    with pytest.raises(lib_exc.DriverError) as err:
        CHILD_OPS['listener_create'][0](driver)
    assert 'out of service' in err.value.user_fault_string
    assert 'nothing was changed' in err.value.user_fault_string
    assert 'alpha' in err.value.operator_fault_string
    assert 'max_loadbalancers' in err.value.operator_fault_string
    assert intents(rt) == []


@pytest.mark.parametrize('name', ['create', 'member_update', 'batch',
                                  'delete'])
def test_store_unavailable_is_an_error_that_changed_nothing(placed, name):
    driver, rt = placed
    calls = {
        'create': lambda: driver.loadbalancer_create(bare_lb('lb-new')),
        'member_update': lambda: CHILD_OPS['member_update'][0](driver),
        'batch': lambda: CHILD_OPS['member_batch_update'][0](driver),
        'delete': lambda: CHILD_OPS['loadbalancer_delete_cascade'][0](
            driver),
    }
    kv = rt.state.kv
    rt.state.kv = BrokenKV()

    with pytest.raises(lib_exc.DriverError) as err:
        calls[name]()

    assert 'nothing was changed' in err.value.user_fault_string
    assert 'state store unavailable' in err.value.operator_fault_string
    assert 'connection refused' in err.value.operator_fault_string
    rt.state.kv = kv
    assert intents(rt) == []
    assert rt.state.get_lb('lb-new') is None


STORE_CALLS = {
    'vip_port': lambda d: d.create_vip_port(
        'lb-new', 'proj-1', {'vip_network_id': 'net-1'}, []),
    'listener_create': CHILD_OPS['listener_create'][0],
    'member_update': CHILD_OPS['member_update'][0],
    'batch': CHILD_OPS['member_batch_update'][0],
    'failover': CHILD_OPS['loadbalancer_failover'][0],
    'delete': CHILD_OPS['loadbalancer_delete_cascade'][0],
}


@pytest.mark.parametrize('name', ['create', 'vip_port', 'listener_create',
                                  'member_update', 'batch', 'failover',
                                  'delete'])
def test_a_store_a_newer_multilb_upgraded_is_not_written(placed, name,
                                                         monkeypatch):
    """An octavia-api left on an older multilb during an upgrade must not
    write the old key layout into a store a newer one upgraded."""
    driver, rt = placed
    monkeypatch.setattr(runtime, 'SCHEMA_RECHECK', 0.0)
    calls = dict(STORE_CALLS, **{
        'create': lambda d: d.loadbalancer_create(bare_lb('lb-new'))})
    rt.state.kv.commit(puts={keys.schema_key(): json.dumps(
        {'version': keys.SCHEMA_VERSION + 1, 'at': 1.0})})
    before = [(e.key, e.value) for e in rt.state.kv.get_prefix('')]

    with pytest.raises(lib_exc.DriverError) as err:
        calls[name](driver)

    assert 'nothing was changed' in err.value.user_fault_string
    assert ('key layout version %d, newer than this multilb reads'
            % (keys.SCHEMA_VERSION + 1)) in err.value.operator_fault_string
    assert [(e.key, e.value) for e in rt.state.kv.get_prefix('')] == before


def test_the_key_layout_is_read_again_after_an_upgrade(placed, monkeypatch):
    driver, rt = placed
    monkeypatch.setattr(runtime, 'SCHEMA_RECHECK', 0.0)
    rt.state.kv.commit(puts={keys.schema_key(): json.dumps(
        {'version': keys.SCHEMA_VERSION + 1, 'at': 1.0})})
    with pytest.raises(lib_exc.DriverError):
        driver.loadbalancer_create(bare_lb('lb-new'))
    rt.state.kv.commit(puts={keys.schema_key(): json.dumps(
        {'version': keys.SCHEMA_VERSION, 'at': 2.0})})

    driver.loadbalancer_create(bare_lb('lb-new'))

    assert rt.state.get_lb('lb-new')['cluster'] == 'alpha'


def test_a_create_whose_commit_reply_was_lost_is_placed_once(make):
    """etcd applied the placement and its answer was lost: the create
    succeeds (the agent will build it), nothing is given back."""
    driver, rt = make({'alpha': {'max_loadbalancers': 5}})
    rt.state.kv = LostReplyKV(rt.state.kv)

    assert driver.loadbalancer_create(fx.create_lb()) is None

    assert rt.state.kv.lost == 0
    assert rt.state.get_lb(LB)['cluster'] == 'alpha'
    assert placed_count(rt, 'alpha') == 1
    assert intents(rt) == [{'op': 'create', 'type': 'loadbalancer',
                            'id': LB}]


def test_a_change_whose_commit_reply_was_lost_is_recorded_once(placed):
    driver, rt = placed
    rt.state.kv = LostReplyKV(rt.state.kv)

    CHILD_OPS['listener_create'][0](driver)

    assert rt.state.kv.lost == 0
    assert [i['op'] for i in intents(rt)] == ['create']
    assert intents(rt)[0]['type'] == 'listener'


def test_a_lost_reply_to_a_commit_that_did_not_apply_changed_nothing(
        placed):
    """The reply is lost and the re-read shows nothing of it: the user is
    told nothing was changed, and nothing was."""
    driver, rt = placed

    class Refused(LostReplyKV):
        def commit(self, checks=None, puts=None, deletes=()):
            if puts:
                raise exceptions.StoreUnavailable('connection reset')
            return self.kv.commit(checks=checks, puts=puts, deletes=deletes)
    rt.state.kv = Refused(rt.state.kv)

    with pytest.raises(lib_exc.DriverError) as err:
        driver.loadbalancer_create(bare_lb('lb-new'))

    assert 'nothing was changed' in err.value.user_fault_string
    assert rt.state.get_lb('lb-new') is None


def test_unexpected_failure_does_not_leak_details_to_the_user(placed):
    driver, rt = placed

    class CommitExplodes:
        """Reads work; a commit hits a bug (not a StoreUnavailable)."""

        def __init__(self, kv):
            self.get, self.get_prefix = kv.get, kv.get_prefix

        def commit(self, checks=None, puts=None, deletes=()):
            raise KeyError('internal detail')

    rt.state.kv = CommitExplodes(rt.state.kv)
    with pytest.raises(lib_exc.DriverError) as err:
        CHILD_OPS['member_update'][0](driver)
    assert 'internal detail' not in err.value.user_fault_string
    assert 'nothing was changed' in err.value.user_fault_string


# -- flavors, availability zones ---------------------------------------------


FLEET = {'alpha': {'tags': 'gold, ssd'}, 'beta': {'tags': 'silver'}}


def test_every_metadata_key_is_published_with_a_description(make):
    driver, _rt = make(FLEET)
    flavor = driver.get_supported_flavor_metadata()
    assert set(flavor) == {'clusters', 'cluster_tags', 'backend', 'placement',
                           'shard_size', 'loadbalancer_topology',
                           'compute_flavor', 'amp_image_tag'}
    assert set(driver.get_supported_availability_zone_metadata()) == {
        'clusters', 'cluster_tags', 'compute_zone', 'volume_zone',
        'management_network', 'valid_vip_networks'}
    assert all(text.strip() for text in flavor.values())
    assert 'ignored' in flavor['loadbalancer_topology']


@pytest.mark.parametrize('method', ['validate_flavor',
                                    'validate_availability_zone'])
@pytest.mark.parametrize('metadata', [
    {}, {'clusters': ['alpha']}, {'cluster_tags': ['gold', 'ssd']},
    {'clusters': ['alpha', 'beta'], 'cluster_tags': ['silver']}])
def test_valid_metadata_is_accepted(make, method, metadata):
    driver, _rt = make(FLEET)
    assert getattr(driver, method)(metadata) is None


def test_amphora_keys_are_accepted_for_generic_tooling(make):
    driver, _rt = make(FLEET)
    assert driver.validate_flavor({'loadbalancer_topology': 'SINGLE'}) is None
    assert driver.validate_availability_zone(
        {'compute_zone': 'nova', 'management_network': 'net-1'}) is None


def test_amphora_keys_accept_null_as_octavia_tooling_sends_it(make):
    # tempest's AZ profiles carry compute_zone: null when no zone is set
    driver, _rt = make(FLEET)
    assert driver.validate_availability_zone(
        {'compute_zone': None, 'management_network': 'net-1',
         'valid_vip_networks': None}) is None
    assert driver.validate_flavor({'loadbalancer_topology': None}) is None


def test_a_wrong_type_for_an_ignored_key_says_what_is_allowed(make):
    driver, _rt = make(FLEET)
    with pytest.raises(lib_exc.UnsupportedOptionError) as err:
        driver.validate_availability_zone({'compute_zone': 7})
    assert err.value.user_fault_string == (
        "'compute_zone': 7 is not of type "
        "'string', 'null'; expected a string or null")


@pytest.mark.parametrize('metadata,expected', [
    ({'size': 'large'}, ['unknown flavor metadata key(s): size',
                         'valid keys: backend, cluster_tags, clusters']),
    ({'clusters': 'alpha'}, ["'clusters'", 'list of distinct strings']),
    ({'clusters': ['zeta']}, ['unknown cluster(s) zeta',
                              'configured clusters: alpha, beta']),
    ({'cluster_tags': ['platinum']}, ['no cluster has tag(s) platinum',
                                      'tags in use: gold, silver, ssd']),
    ({'cluster_tags': ['gold', 'silver']}, ['selects no cluster']),
    ({'backend': 'f5'}, ["no cluster uses backend 'f5'",
                         'backends in use: fake']),
    ({'placement': 'random'}, ["'placement'", 'allowed values: spread, pack']),
    ({'shard_size': 0}, ["'shard_size'", 'integer >= 1']),
    (['clusters'], ['must be a JSON object']),
])
def test_bad_flavor_is_refused_naming_what_is_valid(make, metadata, expected):
    driver, _rt = make(FLEET)
    with pytest.raises(lib_exc.UnsupportedOptionError) as err:
        driver.validate_flavor(metadata)
    for text in expected:
        assert text in err.value.user_fault_string


def test_amphora_flavor_key_is_not_an_availability_zone_key(make):
    driver, _rt = make(FLEET)
    with pytest.raises(lib_exc.UnsupportedOptionError) as err:
        driver.validate_availability_zone({'loadbalancer_topology': 'SINGLE'})
    assert 'valid keys: cluster_tags, clusters (accepted and ignored: ' \
        'compute_zone' in \
        err.value.user_fault_string


# -- backend capabilities -----------------------------------------------------


class HttpOnlyBackend(fake_backend.FakeBackend):
    SUPPORTED_LISTENER_PROTOCOLS = frozenset({'HTTP', 'TCP'})
    SUPPORTED_ALGORITHMS = frozenset({'ROUND_ROBIN'})


@pytest.fixture
def httponly(monkeypatch):
    real = registry._load
    monkeypatch.setattr(registry, '_load', lambda name: (
        HttpOnlyBackend if name == 'httponly' else real(name)))


def test_unsupported_listener_protocol_names_cluster_and_supported(
        make, httponly):
    driver, rt = make({'lim': {'backend': 'httponly'}})
    driver.loadbalancer_create(bare_lb('lb-l'))
    activate(rt, graphs.from_octavia(fx.as_get_result(bare_lb('lb-l'))),
             cluster='lim')

    with pytest.raises(lib_exc.UnsupportedOptionError) as err:
        driver.listener_create(fx.listener('l-udp', 'UDP', 53,
                                           loadbalancer_id='lb-l'))

    assert err.value.user_fault_string == (
        'cluster lim (backend httponly): listener protocol UDP is not '
        'supported; supported: HTTP, TCP')
    assert intents(rt, 'lim', 'lb-l') == []


def test_unsupported_value_in_an_update(make, httponly):
    driver, rt = make({'lim': {'backend': 'httponly'}})
    driver.loadbalancer_create(bare_lb('lb-l'))
    activate(rt, graphs.from_octavia(fx.as_get_result(bare_lb('lb-l'))),
             cluster='lim')
    driver.pool_create(fx.pool('p', loadbalancer_id='lb-l'))
    rt.state.complete('lb-l', 'lim', rt.state.pending('lim')['lb-l'],
                      index={'p': 'pool'})

    with pytest.raises(lib_exc.UnsupportedOptionError) as err:
        driver.pool_update(fx.pool('p', loadbalancer_id='lb-l'),
                           dm.Pool(pool_id='p', lb_algorithm='SOURCE_IP'))
    assert 'algorithm SOURCE_IP is not supported; supported: ROUND_ROBIN' \
        in err.value.user_fault_string
    # An update that does not touch the algorithm is fine.
    driver.pool_update(fx.pool('p', loadbalancer_id='lb-l'),
                       dm.Pool(pool_id='p', name='renamed'))


def test_create_refused_when_no_cluster_supports_the_graph(make, httponly):
    driver, rt = make({'lim': {'backend': 'httponly'}})
    with pytest.raises(lib_exc.UnsupportedOptionError) as err:
        driver.loadbalancer_create(fx.create_lb())   # has TERMINATED_HTTPS
    message = err.value.user_fault_string
    assert message.startswith('no appliance cluster supports this load '
                              'balancer: cluster lim (backend httponly)')
    assert 'TERMINATED_HTTPS' in message
    assert rt.state.get_lb(LB) is None
    assert rt.state.cluster_counts() == {}


def test_create_skips_clusters_that_lack_a_feature(make, httponly):
    # 'lim' has more room (unlimited), but cannot serve the graph.
    driver, rt = make({'lim': {'backend': 'httponly'},
                       'roomy': {'max_loadbalancers': 10}})
    driver.loadbalancer_create(bare_lb('lb-other'))  # goes to lim
    driver.loadbalancer_create(fx.create_lb())
    assert rt.state.get_lb('lb-other')['cluster'] == 'lim'
    assert rt.state.get_lb(LB)['cluster'] == 'roomy'


class NoLimitBackend(fake_backend.FakeBackend):
    """Refuses a connection limit as the caddy backend does: in
    check_supported, not in a capability set."""

    @classmethod
    def check_supported(cls, object_type, fields):
        super().check_supported(object_type, fields)
        if fields.get('connection_limit') not in (None, -1):
            raise backend_exc.UnsupportedFeature(
                'listener connection_limit %s is not supported; '
                'supported: -1 (unlimited)' % fields['connection_limit'])


@pytest.fixture
def nolimit(monkeypatch):
    real = registry._load
    monkeypatch.setattr(registry, '_load', lambda name: (
        NoLimitBackend if name == 'nolimit' else real(name)))


def limited_lb():
    lb = fx.create_lb()
    lb.listeners[0].connection_limit = 100
    return lb


def test_whole_graph_gets_the_check_of_a_single_object(make, nolimit):
    """A listener option the backend refuses is refused in the create
    request of the whole graph too, with nothing placed, not accepted and
    then put in ERROR by the cluster."""
    driver, rt = make({'lim': {'backend': 'nolimit'}})
    with pytest.raises(lib_exc.UnsupportedOptionError) as err:
        driver.loadbalancer_create(limited_lb())
    assert err.value.user_fault_string == (
        'no appliance cluster supports this load balancer: cluster lim '
        '(backend nolimit): listener connection_limit 100 is not '
        'supported; supported: -1 (unlimited)')
    assert rt.state.get_lb(LB) is None
    assert rt.state.cluster_counts() == {}


def test_whole_graph_goes_to_a_cluster_that_takes_every_option(
        make, nolimit):
    driver, rt = make({'lim': {'backend': 'nolimit'},
                       'other': {'max_loadbalancers': 10}})
    driver.loadbalancer_create(bare_lb('lb-other'))    # lim: more room
    driver.loadbalancer_create(limited_lb())
    assert rt.state.get_lb('lb-other')['cluster'] == 'lim'
    assert rt.state.get_lb(LB)['cluster'] == 'other'


def test_listener_refused_on_a_cluster_full_of_listeners(make):
    driver, rt = make({'alpha': {'max_listeners': 2}})
    driver.loadbalancer_create(fx.create_lb())
    graph = fx.lb_graph()                           # two listeners
    record = dict(rt.state.get_lb(LB), listeners=len(graph['listeners']))
    rt.state.complete(LB, 'alpha', rt.state.pending('alpha')[LB],
                      record=record, index=graphs.object_ids(graph))
    assert rt.state.cluster_listeners('alpha') == 2

    with pytest.raises(lib_exc.DriverError) as err:
        driver.listener_create(fx.listener('l-3', port=8080,
                                           loadbalancer_id=LB))
    assert 'no room for another listener' in err.value.user_fault_string
    assert 'carries 2 of 2 listeners' in err.value.operator_fault_string
    assert rt.state.pending('alpha') == {}
