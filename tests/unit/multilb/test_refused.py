"""Objects a cluster refuses never poison their load balancer.

The worker applies a whole load balancer at a time. A member the appliance
refuses must go to ERROR alone: the rest of the load balancer is applied
without it, and later changes of the load balancer succeed while it sits in
ERROR (multilb/refused.py, ClusterWorker._apply_refusing). The ``fake``
backend refuses members on the addresses of its ``reject_addresses`` fault.
"""

from octavia_lib.api.drivers import data_models as dm

from backends import exceptions as backend_exc
from multilb import refused
from tests.unit import fixtures as fx
from tests.unit.fixtures import (  # noqa: H301
    L_HTTP, LB, M1, M2, M3, POOL_API, POOL_WEB)
from tests.unit.fixtures import reported

ACTIVE, ERROR, DELETED = fx.ACTIVE, fx.ERROR, fx.DELETED
M4, M5 = 'member-4', 'member-5'
BAD = '192.0.2.99'


def _add_member(env, member_id, address, pool_index=0):
    pool = env.committed()['pools'][pool_index]
    pool['members'].append(dict(pool['members'][0], member_id=member_id,
                                address=address, weight=1, name=None))


def _appliance_members(env, pool_index=0):
    return sorted(m['member_id'] for m in
                  env.appliance()['pools'][pool_index]['members'])


def _refused_member(env):
    """An ACTIVE LB with member M4 on an address the cluster refuses."""
    env.create_active()
    env.faults(reject_addresses=[BAD])
    env.driver.member_create(fx.member(M4, POOL_WEB, BAD))
    _add_member(env, M4, BAD)
    env.process()
    env.octavia.statuses.clear()


def _weight_update(env, member_id=M1, weight=7):
    env.driver.member_update(fx.member(member_id, POOL_WEB, '192.0.2.10'),
                             dm.Member(member_id=member_id, weight=weight))
    for m in env.committed()['pools'][0]['members']:
        if m['member_id'] == member_id:
            m['weight'] = weight
    env.process()


def _weights(env):
    return {m['member_id']: m['weight']
            for m in env.appliance()['pools'][0]['members']}


# -- one refused member -------------------------------------------------------


def test_refused_member_is_error_and_the_rest_stays_applied(env):
    env.create_active()
    env.faults(reject_addresses=[BAD])
    env.driver.member_create(fx.member(M4, POOL_WEB, BAD))
    _add_member(env, M4, BAD)

    env.process()

    assert reported(env) == {M4: ERROR, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert _appliance_members(env) == [M1, M2]
    assert env.state.get_lb(LB)['refused'] == [M4]
    assert env.pending() == []


def test_later_changes_succeed_while_a_member_is_in_error(env):
    _refused_member(env)

    _weight_update(env)

    # Before: the refused member was sent again and the weight change
    # failed with it (M1 ERROR, weight unchanged on the appliance).
    assert reported(env) == {M1: ACTIVE, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert _weights(env) == {M1: 7, M2: 1}
    assert env.state.get_lb(LB)['refused'] == [M4]


def test_changes_elsewhere_leave_the_refused_member_out(env):
    _refused_member(env)
    env.driver.member_create(fx.member(M5, POOL_API, '192.0.2.30'))
    _add_member(env, M5, '192.0.2.30', pool_index=1)

    env.process()

    assert reported(env)[M5] == ACTIVE
    assert M4 not in reported(env)       # no status rewrite for M4
    assert _appliance_members(env) == [M1, M2]
    assert _appliance_members(env, 1) == [M3, M5]


def test_fixing_the_refused_member_brings_it_in(env):
    _refused_member(env)
    env.driver.member_update(fx.member(M4, POOL_WEB, BAD),
                             dm.Member(member_id=M4, weight=3))
    env.committed()['pools'][0]['members'][2]['weight'] = 3
    env.faults()                         # the cluster can route it now

    env.process()

    assert reported(env)[M4] == ACTIVE
    assert _weights(env) == {M1: 1, M2: 1, M4: 3}
    assert env.state.get_lb(LB)['refused'] == []


def test_updating_a_still_refused_member_keeps_it_in_error(env):
    _refused_member(env)
    env.driver.member_update(fx.member(M4, POOL_WEB, BAD),
                             dm.Member(member_id=M4, weight=3))
    env.committed()['pools'][0]['members'][2]['weight'] = 3

    env.process()

    assert reported(env) == {M4: ERROR, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert _appliance_members(env) == [M1, M2]
    assert env.state.get_lb(LB)['refused'] == [M4]


def test_deleting_the_refused_member_forgets_it(env):
    _refused_member(env)
    env.driver.member_delete(fx.member(M4, POOL_WEB, BAD))
    del env.committed()['pools'][0]['members'][2]

    env.process()

    assert reported(env) == {M4: DELETED, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert env.state.get_lb(LB)['refused'] == []
    assert env.state.lookup(M4) is None


def test_refusal_without_names_holds_out_what_the_operation_changed(env):
    env.create_active()
    env.faults(reject_addresses=[BAD], reject_unnamed=True)
    env.driver.member_create(fx.member(M4, POOL_WEB, BAD))
    _add_member(env, M4, BAD)
    env.process()
    assert reported(env)[M4] == ERROR
    env.octavia.statuses.clear()

    _weight_update(env)

    assert reported(env)[M1] == ACTIVE
    assert _weights(env) == {M1: 7, M2: 1}


def test_refused_object_the_lb_needs_fails_the_operation(env):
    # An unnamed refusal of a change the rest cannot do without: holding
    # the target out still leaves a graph the cluster refuses, so the
    # operation ends in ERROR as before and nothing is held out.
    env.create_active()
    env.faults(apply='rejected')
    _weight_update(env)

    assert reported(env) == {M1: ERROR, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert env.state.get_lb(LB).get('refused', []) == []
    assert _weights(env) == {M1: 1, M2: 1}


def test_refusals_named_one_at_a_time_are_all_held_out(env, monkeypatch):
    # Caddy names the first object it refuses; the worker goes on until
    # the rest applies.
    env.create_active()
    apply = env.worker.backend.apply_loadbalancer

    def first_only(graph):
        for m in graph['pools'][0]['members']:
            if m['address'] == BAD:
                raise backend_exc.BackendRejected(
                    'no route', object_ids=[m['member_id']])
        apply(graph)

    monkeypatch.setattr(env.worker.backend, 'apply_loadbalancer', first_only)
    env.driver.member_batch_update(POOL_WEB, [
        fx.member(M1, POOL_WEB, '192.0.2.10'), fx.member(M4, POOL_WEB, BAD),
        fx.member(M5, POOL_WEB, BAD)])
    web = env.committed()['pools'][0]
    web['members'] = [web['members'][0]]
    _add_member(env, M4, BAD)
    _add_member(env, M5, BAD)

    env.process()

    assert reported(env)[M4] == reported(env)[M5] == ERROR
    assert reported(env)[M1] == ACTIVE
    assert _appliance_members(env) == [M1]
    assert env.state.get_lb(LB)['refused'] == [M4, M5]


def _refuse_pools_using(env, monkeypatch, algorithm):
    """The cluster refuses (naming it) any pool with ``algorithm``."""
    apply = env.worker.backend.apply_loadbalancer

    def refusing(graph):
        for pool in graph['pools']:
            if pool['lb_algorithm'] == algorithm:
                raise backend_exc.BackendRejected(
                    'no %s' % algorithm, object_ids=[pool['pool_id']])
        apply(graph)

    monkeypatch.setattr(env.worker.backend, 'apply_loadbalancer', refusing)


def test_a_change_below_a_refused_object_is_refused_with_it(env,
                                                            monkeypatch):
    env.create_active()
    _refuse_pools_using(env, monkeypatch, 'LEAST_CONNECTIONS')
    env.driver.pool_update(fx.pool(fx.POOL_API),
                           dm.Pool(pool_id=fx.POOL_API,
                                   lb_algorithm='LEAST_CONNECTIONS'))
    env.committed()['pools'][1]['lb_algorithm'] = 'LEAST_CONNECTIONS'
    env.process()
    assert reported(env)[POOL_API] == ERROR
    assert [p['pool_id'] for p in env.appliance()['pools']] == [POOL_WEB]
    env.octavia.statuses.clear()

    # a member added to the pool left out is not on the cluster either
    env.driver.member_create(fx.member(M5, POOL_API, '192.0.2.30'))
    _add_member(env, M5, '192.0.2.30', pool_index=1)
    env.process()
    # (Octavia locked the pool for the member create: it stays ERROR)
    assert reported(env) == {M5: ERROR, POOL_API: ERROR, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert env.state.get_lb(LB)['refused'] == [M5, POOL_API]
    env.octavia.statuses.clear()

    # fixing the pool brings it in with the member refused below it
    env.driver.pool_update(fx.pool(fx.POOL_API),
                           dm.Pool(pool_id=fx.POOL_API,
                                   lb_algorithm='ROUND_ROBIN'))
    env.committed()['pools'][1]['lb_algorithm'] = 'ROUND_ROBIN'
    env.process()
    assert reported(env) == {POOL_API: ACTIVE, M5: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert _appliance_members(env, 1) == [M3, M5]
    assert env.state.get_lb(LB)['refused'] == []


# -- batch, create, failover, sync ------------------------------------------


def test_batch_with_one_refused_member_applies_the_others(env):
    env.create_active()
    env.faults(reject_addresses=[BAD])
    env.driver.member_batch_update(POOL_WEB, [
        fx.member(M1, POOL_WEB, '192.0.2.10'),
        fx.member(M4, POOL_WEB, BAD),
        fx.member(M5, POOL_WEB, '192.0.2.13')])
    web = env.committed()['pools'][0]
    web['members'] = [web['members'][0]]
    _add_member(env, M4, BAD)
    _add_member(env, M5, '192.0.2.13')

    env.process()

    assert reported(env) == {M1: ACTIVE, M4: ERROR, M5: ACTIVE,
                             M2: DELETED, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert _appliance_members(env) == [M1, M5]


def test_lb_create_with_a_refused_member_is_active_without_it(env):
    env.faults(reject_addresses=['192.0.2.20'])      # M3's address
    env.driver.loadbalancer_create(fx.create_lb())
    env.octavia.commit(fx.full_lb())

    env.process()

    got = reported(env)
    assert got[M3] == ERROR
    assert {oid: v for oid, v in got.items() if oid != M3} == {
        oid: ACTIVE for oid in fx.ALL_IDS if oid != M3}
    assert _appliance_members(env, 1) == []
    assert env.state.get_lb(LB)['refused'] == [M3]


def test_failover_tries_refused_objects_again(env):
    _refused_member(env)

    env.driver.loadbalancer_failover(LB)
    env.process()
    # still refused: still ERROR, the LB itself fails over fine
    assert reported(env) == {LB: ACTIVE, M4: ERROR}
    assert _appliance_members(env) == [M1, M2]

    env.octavia.statuses.clear()
    env.faults()
    env.driver.loadbalancer_failover(LB)
    env.process()
    assert reported(env) == {LB: ACTIVE, M4: ACTIVE}
    assert _appliance_members(env) == [M1, M2, M4]
    assert env.state.get_lb(LB)['refused'] == []


def test_agent_resync_does_not_retry_refused_objects(env):
    _refused_member(env)
    env.faults()
    env.worker.backend.delete_loadbalancer(LB)     # the appliance lost it
    env.state.add_intent(LB, 'alpha', {
        'op': 'sync', 'type': 'loadbalancer', 'id': LB, 'project': ''})

    env.process()

    assert reported(env) == {}
    assert _appliance_members(env) == [M1, M2]


# -- the pure rules ---------------------------------------------------------


def _graph():
    return fx.lb_graph()


def test_culprits_prefers_the_objects_the_backend_names():
    exc = backend_exc.BackendRejected('no', object_ids=[M2, 'not-here'])
    intents = [{'op': 'update', 'type': 'member', 'id': M1}]
    assert refused.culprits(exc, intents, _graph(), {}) == {M2}


def test_culprits_falls_back_to_targets_and_retried_objects():
    exc = backend_exc.BackendRejected('no')
    intents = [{'op': 'update', 'type': 'member', 'id': M1},
               {'op': 'batch', 'type': 'pool', 'id': POOL_WEB,
                'members': [M2]}]
    assert refused.culprits(exc, intents, _graph(), {}) == {M1, M2}
    failover = [{'op': 'failover', 'type': 'loadbalancer', 'id': LB}]
    assert refused.culprits(exc, failover, _graph(),
                            {'refused': [M3]}) == {M3}


def test_culprits_is_empty_when_the_lb_itself_is_refused():
    named = backend_exc.BackendRejected('no', object_ids=[LB, M1])
    assert refused.culprits(named, [], _graph(), {}) == set()
    create = [{'op': 'create', 'type': 'loadbalancer', 'id': LB}]
    assert refused.culprits(backend_exc.BackendRejected('no'), create,
                            _graph(), {}) == set()


def test_held_out_keeps_refused_objects_out_until_retried():
    record = {'refused': [M1, 'deleted-meanwhile']}
    graph = _graph()
    sync = [{'op': 'sync', 'type': 'loadbalancer', 'id': LB}]
    assert refused.held_out(record, sync, graph) == {M1}
    update = [{'op': 'update', 'type': 'member', 'id': M1}]
    assert refused.held_out(record, update, graph) == set()
    failover = [{'op': 'failover', 'type': 'loadbalancer', 'id': LB}]
    assert refused.held_out(record, failover, graph) == set()
