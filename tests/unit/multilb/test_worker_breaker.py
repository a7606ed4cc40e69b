"""The cluster's circuit breaker as the worker and the scheduler use it:
the FAKE backend's injected faults go through the breaker exactly as a real
appliance's failures would; time moves with the ``clock`` fixture."""

import datetime

import pytest
from octavia_lib.api.drivers import exceptions as lib_exc

from backends import transport
from multilb import placement
from tests.unit import fixtures as fx
from tests.unit.fixtures import LB, M1, POOL_WEB, reported


@pytest.fixture
def guarded(env):
    """``env`` whose worker and backend have the cluster's breaker."""
    breaker = transport.ClusterBreaker(
        'alpha', fail_max=2, reset_timeout=60,
        store=env.state.breaker_record('alpha'),
        on_change=env.worker._breaker_changed)
    env.worker.breaker = env.worker.backend.breaker = breaker
    return env


def opened_long_ago(breaker, seconds):
    """pybreaker reads the wall clock: move the opening time instead."""
    breaker._storage.opened_at -= datetime.timedelta(seconds=seconds)


def alpha_state(env):
    states, _info, _project = placement.snapshot(
        env.rt, placement.request_for(fx.lb_graph()))
    return {s.name: s for s in states}['alpha']


def test_a_probe_that_finds_no_node_opens_it_and_stops_placements(guarded):
    env = guarded
    env.faults(probe='unavailable')
    env.worker.probe(force=True)
    assert env.worker.breaker.state == transport.BREAKER_OPEN
    shared = env.state.get_breaker('alpha')
    assert shared['state'] == 'open' and 'probe' in shared['last_error']
    assert alpha_state(env).breaker_open

    with pytest.raises(lib_exc.DriverError) as err:
        env.driver.loadbalancer_create(fx.create_lb())
    assert 'in service' in err.value.user_fault_string
    assert 'circuit breaker open' in err.value.operator_fault_string
    assert env.placed() == 0                  # nothing reserved


def test_failing_applies_open_it_then_work_waits_without_calling(
        guarded, clock, caplog):
    env = guarded
    env.weight_update()
    env.process()
    env.process()
    assert env.worker.breaker.state == transport.BREAKER_OPEN
    caplog.clear()
    env.faults()       # the appliance is back, but the breaker is open
    env.process()
    assert 'circuit breaker open' in caplog.text
    assert env.octavia.statuses == [] and env.pending()   # still waiting
    # no retry before the breaker could let one through (capped at 30 s)
    assert env.worker._not_before[LB] - clock.time() >= 29
    assert env.appliance()['pools'][0]['members'][0]['weight'] == 1

    # After reset_timeout one trial goes through; it succeeds and closes.
    clock.advance(61)
    opened_long_ago(env.worker.breaker, 61)
    env.process()
    assert env.worker.breaker.state == transport.BREAKER_CLOSED
    assert reported(env)[M1] == fx.ACTIVE
    assert env.appliance()['pools'][0]['members'][0]['weight'] == 5


def test_work_past_the_deadline_ends_in_error_naming_the_cluster(
        guarded, clock, caplog):
    env = guarded
    env.weight_update()
    env.process()
    env.process()
    clock.advance(301)                       # apply_retry_timeout
    env.process()
    assert reported(env) == {M1: fx.ERROR, POOL_WEB: fx.ACTIVE,
                             fx.L_HTTP: fx.ACTIVE, LB: fx.ACTIVE}
    assert 'cluster alpha: circuit breaker open' in caplog.text


def test_closing_it_ends_the_backoff_of_waiting_work(guarded):
    env = guarded
    env.worker._not_before[LB] = float('inf')
    env.worker.breaker.trip('probe: nothing answers')
    assert env.worker._not_before
    env.worker.breaker._breaker.close()
    assert env.worker._not_before == {}
    assert env.state.get_breaker('alpha')['state'] == 'closed'


def test_a_stale_open_record_does_not_stop_placements(guarded):
    env = guarded
    env.state.set_breaker('alpha', {'state': 'open', 'at': 1.0,
                                    'opened_at': 1.0})
    assert not alpha_state(env).breaker_open


def test_an_open_breaker_holds_work_back_without_reading_octavia(
        guarded, clock, executor):
    env = guarded
    env.weight_update(appliance_down=False)
    env.worker.breaker.trip('probe: nothing answers')
    never = AssertionError('read from Octavia while the breaker refuses')
    env.octavia.get_errors.append(never)
    env.worker.scan()
    assert env.octavia.get_errors == [never]          # not dispatched
    # past the deadline the work is taken up (and ends in ERROR)
    clock.advance(301)
    env.octavia.get_errors.clear()
    env.worker.scan()
    executor.shutdown(wait=True)
    assert reported(env)[M1] == fx.ERROR
