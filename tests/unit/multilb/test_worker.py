"""The cluster worker (multilb/worker.py), driven synchronously.

The driver records intents as Octavia's API would make it; a FakeOctavia
plays the committed database (``octavia.lbs``) and records the status
updates; the ``fake`` backend mirrors what the appliance holds as JSON in
``tmp_path``. Time moves with the ``clock`` fixture, never by sleeping.
"""

import time
import types

import pytest
from octavia_lib.api.drivers import data_models as dm

from backends import types as backend_types
from multilb import graph as graphs
from multilb import probing
from tests.unit import fixtures as fx
from tests.unit.fixtures import (  # noqa: H301
    HM, L_HTTP, L_TLS, LB, M1, M2, M3, POOL_WEB)
from tests.unit.fixtures import reported

ACTIVE, ERROR, DELETED = fx.ACTIVE, fx.ERROR, fx.DELETED
M4 = 'member-4'


# -- load balancer create -----------------------------------------------------


def test_create_waits_for_octavia_commit_then_applies_whole_graph(env):
    env.driver.loadbalancer_create(fx.create_lb())

    env.process()                       # Octavia has not committed yet
    assert env.octavia.statuses == []
    assert env.appliance() is None
    assert len(env.pending()) == 1

    env.octavia.commit(fx.full_lb())
    env.process()

    # The L7 policies missing from the create call are configured too.
    held = env.appliance()
    assert [p['l7policy_id'] for p in held['listeners'][0]['l7policies']] \
        == [fx.POL_REDIRECT, fx.POL_REJECT]
    assert held['pools'][0]['healthmonitor']['url_path'] == '/healthz'
    assert reported(env) == {oid: ACTIVE for oid in fx.ALL_IDS}
    assert len(env.octavia.statuses) == 1
    assert env.pending() == []
    assert env.state.outbox('alpha') == []
    for oid, otype in fx.ALL_IDS.items():
        assert env.state.lookup(oid) == (LB, otype)


def test_create_never_committed_releases_the_placement(env, clock):
    env.driver.loadbalancer_create(fx.create_lb())
    assert env.placed() == 1

    clock.advance(59)
    env.process()
    assert env.placed() == 1 and len(env.pending()) == 1

    clock.advance(2)                    # past commit_wait_timeout (60 s)
    env.process()

    assert env.placed() == 0
    assert env.state.get_lb(LB) is None
    assert env.state.lookup(LB) is None
    assert env.state.cluster_lb_ids('alpha') == []
    assert env.pending() == []
    assert env.octavia.statuses == []
    assert env.appliance() is None


def test_octavia_unreachable_is_retried(env):
    env.driver.loadbalancer_create(fx.create_lb())
    env.octavia.commit(fx.full_lb())
    env.octavia.get_errors.append(fx.OctaviaUnavailable('socket gone'))

    env.process()
    assert env.octavia.statuses == [] and len(env.pending()) == 1

    env.process()
    assert reported(env)[LB] == ACTIVE


def test_create_rejected_by_the_appliance_is_error_and_deletable(env):
    env.faults(apply='rejected')
    env.driver.loadbalancer_create(fx.create_lb())
    env.octavia.commit(fx.full_lb())
    env.process()

    assert reported(env) == {oid: ERROR for oid in fx.ALL_IDS}
    assert env.octavia.statuses[0]['loadbalancers'][0][
        'operating_status'] == ERROR
    assert env.pending() == []

    # The user deletes the LB in ERROR once the appliance behaves again.
    env.faults()
    env.octavia.statuses.clear()
    env.driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    env.process()
    assert reported(env) == {oid: DELETED for oid in fx.ALL_IDS}
    assert env.placed() == 0


# -- updates and child creates wait for the commit ----------------------------


def test_update_waits_until_octavia_shows_the_new_values(env):
    env.create_active()
    env.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                             dm.Member(member_id=M1, weight=5))

    env.process()                       # DB still holds weight 1
    assert env.octavia.statuses == []
    assert len(env.pending()) == 1

    env.committed()['pools'][0]['members'][0]['weight'] = 5
    env.process()

    assert reported(env) == {M1: ACTIVE, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert env.appliance()['pools'][0]['members'][0]['weight'] == 5


def test_update_never_visible_is_applied_after_the_timeout(env, clock):
    env.create_active()
    env.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                             dm.Member(member_id=M1, weight=5))
    clock.advance(61)
    env.process()
    assert reported(env)[M1] == ACTIVE
    assert env.appliance()['pools'][0]['members'][0]['weight'] == 1


def test_child_create_waits_for_commit(env):
    env.create_active()
    new = fx.listener('listener-new', 'TCP', 22)
    env.driver.listener_create(new)

    env.process()
    assert env.octavia.statuses == []

    env.committed()['listeners'].append(
        graphs.from_octavia(fx.as_get_result(dm.LoadBalancer(
            loadbalancer_id=LB, listeners=[new])))['listeners'][0])
    env.process()
    assert reported(env) == {'listener-new': ACTIVE, LB: ACTIVE}
    assert [li['listener_id'] for li in env.appliance()['listeners']] == [
        L_HTTP, L_TLS, 'listener-new']
    assert env.state.lookup('listener-new') == (LB, 'listener')


def test_child_create_rolled_back_is_dropped_silently(env, clock):
    env.create_active()
    env.driver.listener_create(fx.listener('listener-new', 'TCP', 22))
    clock.advance(61)
    env.process()
    assert env.octavia.statuses == []
    assert env.pending() == []
    assert env.state.lookup('listener-new') is None
    assert len(env.appliance()['listeners']) == 2


# -- appliance failures -------------------------------------------------------


def test_unavailable_appliance_is_retried_without_status(env, clock):
    env.weight_update()

    env.process()
    clock.advance(250)
    env.process()
    assert env.octavia.statuses == []
    assert len(env.pending()) == 1

    env.faults()
    env.process()
    assert reported(env)[M1] == ACTIVE
    assert env.appliance()['pools'][0]['members'][0]['weight'] == 5


def test_unavailable_appliance_past_retry_timeout_is_error(env, clock):
    env.weight_update()
    env.process()
    clock.advance(301)                  # apply_retry_timeout is 300 s
    env.process()

    assert reported(env) == {M1: ERROR, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert env.pending() == []


def test_a_cluster_of_its_own_apply_retry_timeout_retries_that_long(
        tmp_path, monkeypatch, settings, clock):
    """[cluster:alpha] apply_retry_timeout = 900 (a slow device) wins over
    [multilb]'s 300 s."""
    env = fx.WorkerEnv(tmp_path, monkeypatch, settings,
                       apply_retry_timeout=900)
    env.weight_update()
    env.process()
    clock.advance(301)
    env.process()
    assert env.octavia.statuses == [] and len(env.pending()) == 1

    clock.advance(600)
    env.process()
    assert reported(env) == {M1: ERROR, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}


def test_rejected_change_is_error_at_once_and_parents_active(env):
    env.create_active()
    env.faults(apply='rejected')
    env.driver.member_create(fx.member(M4, POOL_WEB, '192.0.2.12'))
    env.committed()['pools'][0]['members'].append(dict(
        env.committed()['pools'][0]['members'][0], member_id=M4,
        address='192.0.2.12'))

    env.process()

    assert reported(env) == {M4: ERROR, POOL_WEB: ACTIVE, L_HTTP: ACTIVE,
                             LB: ACTIVE}
    assert env.pending() == []
    assert [m['member_id'] for m in env.appliance()['pools'][0][
        'members']] == [M1, M2]
    # The member in ERROR is known, so the user can delete it.
    env.faults()
    env.octavia.statuses.clear()
    env.driver.member_delete(fx.member(M4, POOL_WEB, '192.0.2.12'))
    env.process()
    assert reported(env)[M4] == DELETED


# -- deletes ------------------------------------------------------------------


def test_lb_delete_releases_capacity_and_forgets_every_object(env):
    env.create_active()
    env.driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    env.process()

    assert reported(env) == {oid: DELETED for oid in fx.ALL_IDS}
    assert env.appliance() is None
    assert env.worker.backend.list_loadbalancer_ids() == set()
    assert env.placed() == 0
    assert env.state.get_lb(LB) is None
    assert env.state.cluster_lb_ids('alpha') == []
    for oid in fx.ALL_IDS:
        assert env.state.lookup(oid) is None
    assert env.pending() == []


def test_lb_delete_failure_is_error_and_keeps_the_placement(env):
    env.create_active()
    env.faults(delete='rejected')
    env.driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    env.process()

    assert reported(env) == {LB: ERROR}
    assert env.placed() == 1
    assert env.state.lookup(M1) == (LB, 'member')
    assert env.appliance() is not None


def test_pool_delete_removes_members_and_monitor(env):
    env.create_active()
    env.driver.pool_delete(fx.pool(POOL_WEB))
    env.process()

    assert reported(env) == {POOL_WEB: DELETED, M1: DELETED, M2: DELETED,
                             HM: DELETED, L_HTTP: ACTIVE, LB: ACTIVE}
    held = env.appliance()
    assert [p['pool_id'] for p in held['pools']] == [fx.POOL_API]
    assert held['listeners'][0]['default_pool_id'] is None
    for oid in (POOL_WEB, M1, M2, HM):
        assert env.state.lookup(oid) is None
    assert POOL_WEB not in env.state.get_lb(LB)['pools']


def test_member_batch_update_uses_and_updates_the_stored_members(env):
    env.create_active()
    env.driver.member_batch_update(POOL_WEB, [
        dm.Member(member_id=M1, pool_id=POOL_WEB, address='192.0.2.10',
                  protocol_port=8080, weight=3),
        fx.member(M4, POOL_WEB, '192.0.2.12')])
    web = env.committed()['pools'][0]
    web['members'][0]['weight'] = 3
    web['members'].append(dict(web['members'][0], member_id=M4,
                               address='192.0.2.12', weight=1))
    env.process()

    assert reported(env) == {M1: ACTIVE, M4: ACTIVE, M2: DELETED,
                             POOL_WEB: ACTIVE, L_HTTP: ACTIVE, LB: ACTIVE}
    assert sorted((m['address'], m['weight']) for m in
                  env.appliance()['pools'][0]['members']) == [
        ('192.0.2.10', 3), ('192.0.2.12', 1)]
    assert env.state.get_lb(LB)['pools'][POOL_WEB] == [M1, M4]
    assert env.state.lookup(M2) is None
    assert env.state.lookup(M4) == (LB, 'member')


def test_failover_reapplies_the_lb_and_heals_children_in_error(env):
    env.create_active()
    env.faults(apply='rejected')
    env.driver.member_update(fx.member(M1, POOL_WEB, '192.0.2.10'),
                             dm.Member(member_id=M1, name='renamed'))
    env.committed()['pools'][0]['members'][0]['name'] = 'renamed'
    env.process()
    assert reported(env)[M1] == ERROR
    env.faults()
    env.octavia.statuses.clear()
    env.worker.backend.delete_loadbalancer(LB)     # the appliance lost it

    env.driver.loadbalancer_failover(LB)
    env.process()

    # the LB (locked) and the member reported ERROR before: nothing else
    # is written, so no other object's updated_at moves
    assert reported(env) == {LB: ACTIVE, M1: ACTIVE}
    held = env.appliance()
    assert held['pools'][0]['members'][0]['name'] == 'renamed'


# -- status outbox ------------------------------------------------------------


def test_undelivered_status_stays_in_outbox_until_a_later_scan(
        env, executor, clock):
    env.driver.loadbalancer_create(fx.create_lb())
    env.octavia.commit(fx.full_lb())
    env.octavia.update_errors.append(fx.OctaviaUnavailable('agent down'))

    env.process()
    assert env.octavia.statuses == []
    assert env.pending() == []              # the work itself is done
    [(_key, entry)] = env.state.outbox('alpha')
    assert entry['lb'] == LB

    env.worker.scan()                       # backing off: not yet
    assert env.octavia.update_attempts == 1
    clock.advance(1)
    env.worker.scan()

    assert reported(env) == {oid: ACTIVE for oid in fx.ALL_IDS}
    assert env.state.outbox('alpha') == []


# -- crashes ------------------------------------------------------------------


def test_crash_between_apply_and_complete_is_finished_by_a_rerun(
        env, monkeypatch):
    env.driver.loadbalancer_create(fx.create_lb())
    env.octavia.commit(fx.full_lb())
    real = env.state.complete
    crashes = []

    def crash_once(*args, **kwargs):
        if not crashes:
            crashes.append(1)
            raise RuntimeError('agent killed')
        return real(*args, **kwargs)

    monkeypatch.setattr(env.state, 'complete', crash_once)
    with pytest.raises(RuntimeError):
        env.process()

    assert env.appliance() is not None          # applied ...
    assert env.octavia.statuses == []           # ... but not reported
    assert len(env.pending()) == 1

    env.process()                               # the agent's next run
    assert reported(env) == {oid: ACTIVE for oid in fx.ALL_IDS}
    assert len(env.octavia.statuses) == 1
    assert env.pending() == []
    assert env.placed() == 1


def test_crash_after_complete_is_delivered_by_the_next_scan(env, executor):
    env.driver.loadbalancer_create(fx.create_lb())
    env.octavia.commit(fx.full_lb())
    env.octavia.update_errors.append(RuntimeError('agent killed'))

    with pytest.raises(RuntimeError):
        env.process()
    assert env.pending() == [] and len(env.state.outbox('alpha')) == 1

    env.worker.scan()
    assert reported(env) == {oid: ACTIVE for oid in fx.ALL_IDS}
    assert env.state.outbox('alpha') == []


def test_scan_dispatches_every_lb_with_work(env, executor):
    env.driver.loadbalancer_create(fx.create_lb())
    env.driver.loadbalancer_create(dm.LoadBalancer(
        loadbalancer_id='lb-2', project_id='p', flavor={},
        availability_zone={}, listeners=[], pools=[]))
    env.octavia.commit(fx.full_lb())
    env.octavia.commit(dm.LoadBalancer(loadbalancer_id='lb-2', name='two',
                                       admin_state_up=True))

    env.worker.scan()
    executor.shutdown(wait=True)

    assert reported(env)[LB] == ACTIVE
    assert reported(env)['lb-2'] == ACTIVE
    assert env.state.pending('alpha') == {}
    assert env.worker.backend.list_loadbalancer_ids() == {LB, 'lb-2'}


def test_work_finished_after_the_scan_read_it_is_not_done_twice(
        env, executor, monkeypatch):
    env.create_active()
    env.driver.listener_update(fx.listener(L_HTTP),
                               dm.Listener(listener_id=L_HTTP,
                                           connection_limit=7))
    env.committed()['listeners'][0]['connection_limit'] = 7
    read = env.state.pending
    raced = []

    def snapshot_then_previous_job_ends(cluster, lb_id=None):
        found = read(cluster, lb_id)
        if lb_id is None and found and not raced:
            raced.append(True)
            env.process()     # the job still running finishes meanwhile
        return found

    monkeypatch.setattr(env.state, 'pending',
                        snapshot_then_previous_job_ends)
    env.worker.scan()
    executor.shutdown(wait=True)
    # one report for the update, not a second one from the stale snapshot
    assert len(env.octavia.statuses) == 1
    assert read('alpha') == {}


def test_intents_of_an_unknown_lb_are_dropped(env):
    env.state.add_intent('lb-ghost', 'alpha', {
        'op': 'update', 'type': 'loadbalancer', 'id': 'lb-ghost'})
    env.process('lb-ghost')
    assert env.pending('lb-ghost') == []
    assert env.octavia.statuses == []


def test_member_delete_leaves_other_pools_alone(env):
    env.create_active()
    env.driver.member_delete(fx.member(M1, POOL_WEB, '192.0.2.10'))
    env.process()
    assert M3 not in reported(env)
    assert [m['member_id'] for m in env.appliance()['pools'][1][
        'members']] == [M3]


def scan_until(env, predicate, timeout=5.0):
    """Run the worker's scans, as its loop would, until ``predicate()``."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, 'condition not reached'
        env.worker.scan()
        time.sleep(0.01)


def test_persistent_unexpected_failure_is_retried_then_reported_error(
        env, executor, clock):
    env.create_active()
    env.driver.listener_update(fx.listener(L_TLS), dm.Listener(
        listener_id=L_TLS, connection_limit=10))
    # e.g. octavia-lib older than the Octavia that answers get_loadbalancer
    skew = TypeError("__init__() got an unexpected keyword argument 'x'")
    env.octavia.get_errors.extend([skew] * 50)

    scan_until(env, lambda: len(env.octavia.get_errors) < 50)
    clock.advance(300)      # still within commit wait + apply retry (360 s)
    scan_until(env, lambda: len(env.octavia.get_errors) < 49)
    assert env.octavia.statuses == []
    assert len(env.pending()) == 1

    clock.advance(61)
    scan_until(env, lambda: env.octavia.statuses)

    assert reported(env) == {L_TLS: ERROR, LB: ACTIVE}
    assert env.pending() == []


# -- health ---------------------------------------------------------------


def test_probe_records_health_and_recent_failures(env, clock):
    env.create_active()
    env.worker.probe(force=True)
    health = env.state.cluster_runtime()['alpha']['health']
    assert (health['reachable'], health['recent_errors']) == (True, 0)

    env.faults(apply='rejected', probe='unavailable')
    env.driver.listener_update(
        fx.listener(fx.L_HTTP, loadbalancer_id=LB),
        dm.Listener(listener_id=fx.L_HTTP, name='x'))
    env.committed()['listeners'][0]['name'] = 'x'
    env.process()
    assert reported(env)[fx.L_HTTP] == ERROR
    clock.advance(11)
    env.worker.probe()
    health = env.state.cluster_runtime()['alpha']['health']
    assert (health['reachable'], health['recent_errors']) == (False, 1)
    assert 'injected probe fault' in health['detail']

    # Failures age out of the window the scheduler weighs.
    env.faults()
    clock.advance(probing.ERROR_WINDOW)
    env.worker.probe()
    health = env.state.cluster_runtime()['alpha']['health']
    assert (health['reachable'], health['recent_errors']) == (True, 0)


def test_probe_waits_for_the_interval(env, clock):
    env.worker.probe(force=True)
    first = env.state.cluster_runtime()['alpha']['health']['at']
    clock.advance(5)
    env.worker.probe()
    assert env.state.cluster_runtime()['alpha']['health']['at'] == first


# -- listener accounting (max_listeners) -----------------------------------


def test_listeners_on_the_cluster_follow_what_was_applied(env):
    env.create_active()                       # the sample has 2 listeners
    assert env.state.cluster_listeners('alpha') == 2
    assert env.state.cluster_runtime()['alpha']['listeners'] == 2

    env.driver.listener_delete(fx.listener(fx.L_TLS, loadbalancer_id=LB))
    env.process()
    assert env.state.cluster_listeners('alpha') == 1

    # A failed apply changes nothing on the appliance, nor the count.
    env.faults(apply='rejected')
    env.driver.listener_create(fx.listener('listener-new', port=8081,
                                           loadbalancer_id=LB))
    env.committed()['listeners'].append(
        graphs.to_plain(fx.listener('listener-new', port=8081,
                                    loadbalancer_id=LB)))
    env.process()
    assert env.state.cluster_listeners('alpha') == 1

    env.faults()
    env.driver.loadbalancer_delete(fx.full_lb(), cascade=True)
    env.process()
    assert env.state.cluster_listeners('alpha') == 0


# -- resync of a cluster that lost load balancers --------------------------


def test_a_load_balancer_the_cluster_lost_is_reapplied_silently(env, clock):
    env.create_active()
    env.worker.backend.delete_loadbalancer(LB)      # the appliance lost it
    assert env.appliance() is None

    env.worker.probe(force=True)
    [intent] = env.pending()
    assert (intent['op'], intent['id']) == ('sync', LB)
    env.process()

    assert env.appliance() is not None
    assert env.octavia.statuses == []                 # nothing to report
    assert env.state.outbox('alpha') == []
    env.worker.probe(force=True)                      # in line again
    assert env.pending() == []


def test_the_cluster_is_listed_every_resync_interval_not_every_probe(
        env, clock):
    env.create_active()
    env.worker.probe(force=True)                      # checked: all there
    env.worker.backend.delete_loadbalancer(LB)        # then lost
    clock.advance(10)
    env.worker.probe(force=True)                      # a cheap probe only
    assert env.pending() == []
    clock.advance(21)                                 # resync_interval 30
    env.worker.probe(force=True)
    assert [i['op'] for i in env.pending()] == ['sync']


def test_a_load_balancer_a_node_missed_is_reapplied_until_it_catches_up(
        env, clock, monkeypatch):
    env.create_active()
    env.worker.probe(force=True)          # the listing is done for 30 s
    health = backend_types.ClusterHealth(
        reachable=True, detail='node b missed a change',
        resync_ids=frozenset({LB, 'lb-not-placed-here'}))
    monkeypatch.setattr(env.worker.backend, 'probe', lambda: health)
    clock.advance(1)
    env.worker.probe(force=True)
    assert [(i['op'], i['id']) for i in env.pending()] == [('sync', LB)]
    env.worker.probe(force=True)          # already queued: not twice
    assert len(env.pending()) == 1


def test_a_load_balancer_never_applied_is_not_resynced(env):
    env.faults(apply='rejected')
    env.driver.loadbalancer_create(fx.create_lb())
    env.octavia.commit(fx.full_lb())
    env.process()                                     # create failed: ERROR
    env.faults()
    env.worker.probe(force=True)
    assert env.pending() == []


def test_a_watched_idle_cluster_is_scanned_less_often_but_probed_on_time(
        env, settings, clock):
    """With the agent's watch on new work, a cluster whose last scan found
    nothing waits idle_poll_interval (bounded by its next probe); with
    work, or unwatched, poll_interval."""
    worker = env.worker
    worker.scan()
    assert worker._pause() == settings.poll_interval     # not watched
    worker.watched = True
    worker._next_probe = time.time() + 60
    assert worker._pause() == settings.idle_poll_interval
    worker._next_probe = time.time() + 2
    assert 1.9 < worker._pause() <= 2
    env.driver.loadbalancer_create(fx.create_lb())
    worker._pool = types.SimpleNamespace(submit=lambda *args: None)
    worker.scan()
    assert worker._pause() == settings.poll_interval     # work pending
    worker._inflight.clear()
    assert worker._pause() == settings.poll_interval     # still pending


def test_an_idle_watched_round_only_probes_until_idle_poll_interval(
        env, settings):
    worker = env.worker
    worker.scan()
    assert worker._scan_due(woken=False)              # not watched
    worker.watched = True
    assert not worker._scan_due(woken=False)          # idle: probe only
    assert worker._scan_due(woken=True)               # new work written
    worker._scanned_at -= settings.idle_poll_interval
    assert worker._scan_due(woken=False)              # a scan is due
