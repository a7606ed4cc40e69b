"""Status dicts that finish an operation (multilb/status.py).

One test per operation and object type, for the rule multilb/status.py
states: every object the API moved to PENDING_* is reported; the target ends
ACTIVE, ERROR or DELETED; parents go back to ACTIVE even when the operation
failed; a deleted object takes its descendants with it (Octavia only frees
their quota when they are reported DELETED).
"""

import copy

import pytest

from multilb import graph as graphs
from multilb import status as statuses
from tests.unit import fixtures as fx
from tests.unit.fixtures import (  # noqa: H301
    HM, L_HTTP, L_TLS, LB, M1, M2, M3, POL_REDIRECT, POL_REJECT, POOL_API,
    POOL_WEB, R_ADMIN, R_API)

ACTIVE, ERROR, DELETED = 'ACTIVE', 'ERROR', 'DELETED'
M4 = 'member-4'
NEW_POOL = 'pool-new'
TYPES = dict(fx.ALL_IDS, **{M4: 'member', NEW_POOL: 'pool',
                            'member-gone': 'member',
                            'l7rule-gone': 'l7rule'})


def record(**pools):
    return {'id': LB, 'cluster': 'alpha', 'project_id': fx.PROJECT,
            'pools': pools or {POOL_WEB: [M1, M2], POOL_API: [M3]}}


def intent(op, otype, oid, **extra):
    return dict(op=op, type=otype, id=oid, **extra)


def build(intents, ok=True, graph=None, rec=None):
    """The status dict, checked for shape; returns ``{id: provisioning}``."""
    graph = fx.lb_graph() if graph is None else graph
    if isinstance(intents, dict):
        intents = [intents]
    status = statuses.for_intents(intents, graph, rec or record(), ok)
    found = {}
    for key, records in status.items():
        for rec_ in records:
            oid = rec_['id']
            assert key == graphs.STATUS_KEYS[TYPES[oid]], (key, oid)
            assert oid not in found, 'reported twice: %s' % oid
            assert rec_['provisioning_status'] in (ACTIVE, ERROR, DELETED)
            if rec_['provisioning_status'] == DELETED:
                assert 'operating_status' not in rec_
            found[oid] = rec_['provisioning_status']
    return found


def same(value, *ids):
    return {oid: value for oid in ids}


# -- load balancer rows -------------------------------------------------------


def test_lb_create_reports_every_object_of_the_graph_active():
    # The L7 policies and rules are not in the object loadbalancer_create
    # gets (fx.create_lb); the committed graph has them and they are
    # reported.
    assert build(intent('create', 'loadbalancer', LB)) == same(
        ACTIVE, *fx.ALL_IDS)


def test_lb_create_operating_statuses():
    status = statuses.for_intents([intent('create', 'loadbalancer', LB)],
                                  fx.lb_graph(), record(), True)
    operating = fx.flatten(status, 'operating_status')
    assert operating[('loadbalancers', LB)] == 'ONLINE'
    assert operating[('listeners', L_HTTP)] == 'ONLINE'
    assert operating[('pools', POOL_WEB)] == 'ONLINE'
    assert operating[('healthmonitors', HM)] == 'ONLINE'
    assert operating[('l7policies', POL_REJECT)] == 'ONLINE'
    assert operating[('l7rules', R_API)] == 'ONLINE'
    # A pool without a monitor: NO_MONITOR; with one: health decides later.
    assert operating[('members', M3)] == 'NO_MONITOR'
    assert ('members', M1) not in operating


def test_disabled_object_is_offline():
    graph = fx.lb_graph()
    graph['listeners'][1]['admin_state_up'] = False
    status = statuses.for_intents([intent('update', 'listener', L_TLS)],
                                  graph, record(), True)
    assert fx.flatten(status, 'operating_status')[
        ('listeners', L_TLS)] == 'OFFLINE'


def test_lb_create_failure_is_error_everywhere():
    status = statuses.for_intents([intent('create', 'loadbalancer', LB)],
                                  fx.lb_graph(), record(), False)
    assert fx.flatten(status) == {
        (graphs.STATUS_KEYS[t], i): ERROR for i, t in fx.ALL_IDS.items()}
    operating = fx.flatten(status, 'operating_status')
    assert operating == {('loadbalancers', LB): 'ERROR'}


@pytest.mark.parametrize('ok,result', [(True, ACTIVE), (False, ERROR)])
def test_lb_update_reports_only_the_lb(ok, result):
    assert build(intent('update', 'loadbalancer', LB), ok) == {LB: result}


def test_lb_failover_reports_the_lb_only():
    # Octavia locked the LB only; a status write on a child would bump its
    # updated_at although nothing changed for it.
    assert build(intent('failover', 'loadbalancer', LB)) == {LB: ACTIVE}


def test_lb_failover_heals_the_children_last_reported_in_error():
    sent = {M1: [ERROR, None], POL_REJECT: [ERROR, None],
            M2: [ACTIVE, 'ONLINE'], LB: [ACTIVE, 'ONLINE']}
    status = statuses.for_intents([intent('failover', 'loadbalancer', LB)],
                                  fx.lb_graph(), record(), True, sent=sent)
    assert fx.flatten(status) == {
        ('loadbalancers', LB): ACTIVE, ('members', M1): ACTIVE,
        ('l7policies', POL_REJECT): ACTIVE}


def test_lb_failover_failure_is_lb_error_only():
    assert build(intent('failover', 'loadbalancer', LB), ok=False) == {
        LB: ERROR}


def test_lb_delete_reports_every_child_deleted_including_tree_only_ids():
    tree = {oid: t for oid, t in fx.ALL_IDS.items() if oid != LB}
    # Objects Octavia passed at delete time but no longer shows.
    tree.update({'member-gone': 'member', 'l7rule-gone': 'l7rule'})
    found = build(intent('delete', 'loadbalancer', LB, tree=tree,
                         cascade=True))
    assert found == same(DELETED, *fx.ALL_IDS, 'member-gone', 'l7rule-gone')


def test_lb_delete_failure_is_lb_error_only():
    tree = {oid: t for oid, t in fx.ALL_IDS.items() if oid != LB}
    assert build(intent('delete', 'loadbalancer', LB, tree=tree),
                 ok=False) == {LB: ERROR}


# -- listener, pool -----------------------------------------------------------


@pytest.mark.parametrize('op', ['create', 'update'])
def test_listener_create_update(op):
    assert build(intent(op, 'listener', L_TLS)) == {L_TLS: ACTIVE,
                                                    LB: ACTIVE}


def test_listener_delete_takes_its_l7_policies_and_rules():
    assert build(intent('delete', 'listener', L_HTTP)) == dict(
        same(DELETED, L_HTTP, POL_REDIRECT, POL_REJECT, R_API, R_ADMIN),
        **{LB: ACTIVE})


def test_pool_delete_default_pool_takes_members_and_monitor():
    assert build(intent('delete', 'pool', POOL_WEB)) == dict(
        same(DELETED, POOL_WEB, M1, M2, HM),
        **same(ACTIVE, L_HTTP, LB))


def test_pool_delete_without_listener():
    graph = fx.lb_graph()
    graph['listeners'][0]['l7policies'] = []    # nothing uses pool-api
    assert build(intent('delete', 'pool', POOL_API), graph=graph) == dict(
        same(DELETED, POOL_API, M3), **same(ACTIVE, LB))


def test_pool_op_on_an_l7_redirect_target_unlocks_the_redirecting_listener():
    # Octavia's Pool.listeners: default-pool listeners and listeners of
    # enabled L7 policies with rules that redirect to it. (Deleting a pool
    # an L7 policy still redirects to is refused by Octavia with a 409.)
    assert build(intent('update', 'pool', POOL_API)) == same(
        ACTIVE, POOL_API, L_HTTP, LB)


def test_pool_update_locks_its_listeners():
    assert build(intent('update', 'pool', POOL_WEB)) == same(
        ACTIVE, POOL_WEB, L_HTTP, LB)


def graph_with_new_pool(listener_index=None):
    graph = fx.lb_graph()
    new = copy.deepcopy(graph['pools'][1])
    new.update(pool_id=NEW_POOL, members=[], healthmonitor=None)
    graph['pools'].append(new)
    if listener_index is not None:
        graph['listeners'][listener_index]['default_pool_id'] = NEW_POOL
    return graph


def test_pool_create_on_a_listener():
    found = build(intent('create', 'pool', NEW_POOL, parent=L_TLS),
                  graph=graph_with_new_pool(1))
    assert found == same(ACTIVE, NEW_POOL, L_TLS, LB)


def test_pool_create_on_the_lb_only():
    found = build(intent('create', 'pool', NEW_POOL),
                  graph=graph_with_new_pool())
    assert found == same(ACTIVE, NEW_POOL, LB)


# -- member, health monitor, L7 ----------------------------------------------


@pytest.mark.parametrize('op,result', [
    ('create', ACTIVE), ('update', ACTIVE), ('delete', DELETED)])
def test_member_ops_lock_pool_listeners_and_lb(op, result):
    assert build(intent(op, 'member', M1, parent=POOL_WEB)) == dict(
        {M1: result}, **same(ACTIVE, POOL_WEB, L_HTTP, LB))


def test_member_of_an_l7_redirect_pool_unlocks_the_redirecting_listener():
    assert build(intent('update', 'member', M3, parent=POOL_API)) == \
        same(ACTIVE, M3, POOL_API, L_HTTP, LB)


@pytest.mark.parametrize('op,result', [
    ('create', ACTIVE), ('update', ACTIVE), ('delete', DELETED)])
def test_health_monitor_ops_lock_pool_listeners_and_lb(op, result):
    assert build(intent(op, 'healthmonitor', HM, parent=POOL_WEB)) == dict(
        {HM: result}, **same(ACTIVE, POOL_WEB, L_HTTP, LB))


def test_l7policy_update_locks_listener_and_lb():
    assert build(intent('update', 'l7policy', POL_REJECT, parent=L_HTTP)) \
        == same(ACTIVE, POL_REJECT, L_HTTP, LB)


def test_a_create_reports_the_children_created_inline_with_it():
    # an L7 policy created with its rules: all of them were PENDING_CREATE
    rules = graphs.descendants(fx.lb_graph(), POL_REJECT)
    assert rules
    assert build(intent('create', 'l7policy', POL_REJECT, parent=L_HTTP)) \
        == same(ACTIVE, POL_REJECT, L_HTTP, LB, *rules)


def test_l7policy_delete_takes_its_rules():
    assert build(intent('delete', 'l7policy', POL_REJECT,
                        parent=L_HTTP)) == dict(
        same(DELETED, POL_REJECT, R_ADMIN), **same(ACTIVE, L_HTTP, LB))


@pytest.mark.parametrize('op,result', [
    ('create', ACTIVE), ('update', ACTIVE), ('delete', DELETED)])
def test_l7rule_ops_lock_policy_listener_and_lb(op, result):
    assert build(intent(op, 'l7rule', R_API, parent=POL_REDIRECT)) == dict(
        {R_API: result}, **same(ACTIVE, POL_REDIRECT, L_HTTP, LB))


# -- member batch -------------------------------------------------------------


def batch_graph():
    """Committed state after PUT /pools/web/members [M1 (weight 3), M4]:
    M2 is still there (PENDING_DELETE until reported)."""
    graph = fx.lb_graph()
    web = graph['pools'][0]
    web['members'][0]['weight'] = 3
    new = dict(web['members'][0], member_id=M4, address='192.0.2.12',
               weight=1)
    web['members'].append(new)
    return graph


def test_batch_lists_active_and_dropped_deleted():
    found = build(intent('batch', 'pool', POOL_WEB, members=[M1, M4],
                         deleted=[M2]), graph=batch_graph())
    assert found == dict(same(ACTIVE, M1, M4, POOL_WEB, L_HTTP, LB),
                         **{M2: DELETED})


def test_batch_deletes_members_known_only_to_the_record():
    # M2 is neither in the committed graph nor in the intent's deletions.
    graph = batch_graph()
    graph['pools'][0]['members'] = [
        m for m in graph['pools'][0]['members'] if m['member_id'] != M2]
    found = build(intent('batch', 'pool', POOL_WEB, members=[M1, M4],
                         deleted=[]), graph=graph)
    assert found[M2] == DELETED


def test_batch_failure_members_error_parents_active():
    found = build(intent('batch', 'pool', POOL_WEB, members=[M1, M4],
                         deleted=[M2]), ok=False, graph=batch_graph())
    assert found == dict(same(ERROR, M1, M4, M2),
                         **same(ACTIVE, POOL_WEB, L_HTTP, LB))


def test_batch_deletions():
    rec = record(**{POOL_WEB: [M1, M2, 'member-old']})
    it = intent('batch', 'pool', POOL_WEB, members=[M1, M4],
                deleted=['member-x'])
    assert statuses.batch_deletions(it, batch_graph(), rec) == [
        M2, 'member-old', 'member-x']


# -- failures of child operations ---------------------------------------------

FAILURES = [
    (intent('create', 'listener', L_TLS), {}),
    (intent('delete', 'listener', L_HTTP), {}),
    (intent('update', 'pool', POOL_WEB), {L_HTTP}),
    (intent('delete', 'pool', POOL_WEB), {L_HTTP}),
    (intent('create', 'member', M1, parent=POOL_WEB), {POOL_WEB, L_HTTP}),
    (intent('delete', 'member', M3, parent=POOL_API), {POOL_API, L_HTTP}),
    (intent('update', 'healthmonitor', HM, parent=POOL_WEB),
     {POOL_WEB, L_HTTP}),
    (intent('delete', 'l7policy', POL_REJECT, parent=L_HTTP), {L_HTTP}),
    (intent('create', 'l7rule', R_API, parent=POL_REDIRECT),
     {POL_REDIRECT, L_HTTP}),
]


@pytest.mark.parametrize('failed,parents', FAILURES,
                         ids=['%(op)s-%(type)s' % f for f, _p in FAILURES])
def test_failed_child_operation_is_error_with_parents_active(failed,
                                                             parents):
    assert build(failed, ok=False) == dict(
        {failed['id']: ERROR}, **same(ACTIVE, LB, *parents))


# -- several intents at once --------------------------------------------------


def test_deleted_is_final():
    # A member update finished together with the delete of its pool.
    found = build([intent('delete', 'pool', POOL_WEB),
                   intent('update', 'member', M1, parent=POOL_WEB)])
    assert found[M1] == DELETED
    assert found[POOL_WEB] == DELETED


def test_status_builder_keeps_deleted():
    builder = statuses.StatusBuilder()
    builder.set('member', M1, DELETED)
    builder.set('member', M1, ACTIVE, 'ONLINE')
    assert builder.build() == {'members': [
        {'id': M1, 'provisioning_status': DELETED}]}


def test_deleting_collects_targets_descendants_and_batch_drops():
    gone = statuses.deleting(
        [intent('delete', 'listener', L_HTTP),
         intent('batch', 'pool', POOL_API, members=[], deleted=[M3]),
         intent('update', 'pool', POOL_WEB)],
        fx.lb_graph(), record())
    assert gone == {L_HTTP, POL_REDIRECT, POL_REJECT, R_API, R_ADMIN, M3}
