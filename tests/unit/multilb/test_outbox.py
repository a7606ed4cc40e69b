"""Status delivery (multilb/outbox.py): retries, deadline, per-LB order.

Entries are written as the worker writes them (``State.complete``) into a
sqlite store in ``tmp_path``; a fake Octavia refuses the status updates of
chosen load balancers, as the driver agent does while its database
refuses writes. Time moves with the ``clock`` fixture (frozen here, so
that backoffs come out exact), never by sleeping.
"""

import logging
import types

import pytest

from multilb import outbox as outbox_mod
from multilb import state as state_mod
from multilb import store
from tests.unit import fixtures as fx

CLUSTER = 'alpha'
DB_DOWN = ("loadbalancers lb-x: (pymysql.err.OperationalError) (2003, "
           "\"Can't connect to MySQL server on '127.0.0.1'\")")


class RefusingOctavia(fx.FakeOctavia):
    """Refuses the status updates of the load balancers in ``refuse``
    (``{lb id: exception}``); records when each attempt was made."""

    def __init__(self, clock):
        super().__init__()
        self.clock = clock
        self.refuse = {}
        self.attempts = []          # (clock offset, lb id)

    def update_status(self, status):
        [lb] = status['loadbalancers']
        self.attempts.append((self.clock.offset, lb['id']))
        if lb['id'] in self.refuse:
            self.update_attempts += 1
            raise self.refuse[lb['id']]
        super().update_status(status)

    def delivered(self):
        return [s['loadbalancers'][0]['id'] for s in self.statuses]

    def tries(self, lb_id):
        return [at for at, found in self.attempts if found == lb_id]


class FrozenClock(fx.Clock):
    """Wall time that moves only with :meth:`advance`."""

    START = 1700000000.0

    def time(self):
        return self.START + self.offset

    def monotonic(self):
        return self.offset


@pytest.fixture
def clock(monkeypatch):
    fake = FrozenClock()
    monkeypatch.setattr(outbox_mod, 'time', fake)
    return fake


@pytest.fixture
def state(tmp_path):
    return state_mod.State(store.get_kv_store(
        'sqlite:///%s' % (tmp_path / 'state.db')))


@pytest.fixture
def octavia(clock):
    return RefusingOctavia(clock)


def make_outbox(state, octavia, deadline=3600.0):
    settings = types.SimpleNamespace(status_delivery_deadline=deadline)
    return outbox_mod.Outbox(CLUSTER, state, octavia, settings)


@pytest.fixture
def outbox(state, octavia):
    return make_outbox(state, octavia)


def finish(state, lb_id, status='ACTIVE'):
    """What a worker job leaves: one outbox entry for ``lb_id``."""
    return state.complete(lb_id, CLUSTER, [], status={'loadbalancers': [
        {'id': lb_id, 'provisioning_status': status}]})


def run(outbox, clock, seconds, step=0.25):
    """The scan of a worker: deliver_all every ``step`` seconds."""
    for _ in range(int(seconds / step)):
        outbox.deliver_all()
        clock.advance(step)


def keys(state):
    return [key for key, _entry in state.outbox(CLUSTER)]


def gaps(times):
    return [round(b - a, 2) for a, b in zip(times, times[1:])]


# -- retries and the deadline -------------------------------------------------

def test_refusal_is_retried_with_growing_backoff_not_dropped_after_five(
        state, octavia, outbox, clock):
    octavia.refuse['lb-x'] = fx.StatusRejected(DB_DOWN)
    key = finish(state, 'lb-x')

    assert outbox.deliver(key) is False
    run(outbox, clock, 120)

    tries = octavia.tries('lb-x')
    assert len(tries) == 10 and keys(state) == [key]
    # 0.5 s, then as long again as it has been refused, up to 30 s
    assert gaps(tries) == [0.5, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]

    del octavia.refuse['lb-x']          # Octavia's database is back
    run(outbox, clock, 30)
    assert octavia.delivered() == ['lb-x'] and keys(state) == []


def test_refused_entry_is_dropped_only_past_the_deadline(
        state, octavia, clock, caplog):
    outbox = make_outbox(state, octavia, deadline=600.0)
    octavia.refuse['lb-x'] = fx.StatusRejected(DB_DOWN)
    finish(state, 'lb-x')
    caplog.set_level(logging.INFO, logger='multilb.outbox')

    run(outbox, clock, 590, step=1.0)
    assert len(keys(state)) == 1
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]

    run(outbox, clock, 60, step=1.0)
    assert keys(state) == [] and octavia.delivered() == []
    [error] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    message = error.getMessage()
    assert message.startswith(
        'Cluster alpha: Octavia refused the status update for load '
        'balancer lb-x for 6')
    assert 'dropping it' in message and DB_DOWN in message
    assert error.args[1] == 'lb-x'           # lazy arguments
    assert 600 <= error.args[2] < 631
    attempts = len(octavia.tries('lb-x'))
    run(outbox, clock, 120)
    assert len(octavia.tries('lb-x')) == attempts


def test_deadline_counts_from_the_first_refusal_not_unreachable_time(
        state, octavia, clock):
    """Waiting for an unreachable driver agent never drops an entry, and
    does not count towards the deadline of a later refusal."""
    outbox = make_outbox(state, octavia, deadline=600.0)
    octavia.refuse['lb-x'] = fx.OctaviaUnavailable('driver agent gone')
    key = finish(state, 'lb-x')

    run(outbox, clock, 900, step=1.0)
    assert keys(state) == [key]
    tries = octavia.tries('lb-x')
    assert max(gaps(tries)) == outbox_mod.MAX_UNAVAILABLE_BACKOFF

    octavia.refuse['lb-x'] = fx.StatusRejected(DB_DOWN)
    run(outbox, clock, 60)
    assert keys(state) == [key]
    delivery = state.outbox_entry(key)['delivery']
    assert delivery['refused_since'] - delivery['first_failure_at'] > 800


def test_unreachable_driver_agent_holds_the_whole_cluster_briefly(
        state, octavia, outbox, clock):
    octavia.refuse['lb-x'] = fx.OctaviaUnavailable('socket gone')
    finish(state, 'lb-x')
    finish(state, 'lb-y')

    outbox.deliver_all()
    # Nothing was processed: the pass ends, lb-y waits too ...
    assert octavia.attempts == [(0.0, 'lb-x')]
    outbox.deliver_all()
    assert len(octavia.attempts) == 1
    # ... but only for a short while once the agent is back.
    del octavia.refuse['lb-x']
    run(outbox, clock, 1)
    assert octavia.delivered() == ['lb-x', 'lb-y']


# -- one load balancer never blocks another; order per load balancer ---------

def test_a_failing_lb_does_not_block_other_lbs(state, octavia, outbox):
    octavia.refuse['lb-x'] = fx.StatusRejected(DB_DOWN)
    stuck = finish(state, 'lb-x')
    finish(state, 'lb-y')
    finish(state, 'lb-z')

    outbox.deliver_all()

    assert octavia.delivered() == ['lb-y', 'lb-z']
    assert keys(state) == [stuck]


def test_entries_of_one_lb_are_delivered_in_order(
        state, octavia, outbox, clock):
    octavia.refuse['lb-x'] = fx.StatusRejected(DB_DOWN)
    older = finish(state, 'lb-x', 'PENDING_UPDATE')
    assert outbox.deliver(older) is False
    newer = finish(state, 'lb-x', 'ACTIVE')
    other = finish(state, 'lb-y')

    # The job's own delivery and the scan both keep the newer one back.
    assert outbox.deliver(newer) is False
    assert outbox.deliver(other) is True
    clock.advance(1)
    outbox.deliver_all()
    assert keys(state) == [older, newer]
    assert octavia.tries('lb-x') == [0.0, 1.0]    # the older one only

    del octavia.refuse['lb-x']
    run(outbox, clock, 2)
    assert octavia.delivered() == ['lb-y', 'lb-x', 'lb-x']
    assert [s['loadbalancers'][0]['provisioning_status']
            for s in octavia.statuses[1:]] == ['PENDING_UPDATE', 'ACTIVE']
    assert keys(state) == []


def test_an_entry_being_sent_by_another_thread_holds_its_lb_back(
        state, octavia, outbox):
    first = finish(state, 'lb-x', 'PENDING_UPDATE')
    finish(state, 'lb-x', 'ACTIVE')
    finish(state, 'lb-y')
    outbox._delivering.add(first)       # a job is sending it right now

    outbox.deliver_all()

    assert octavia.delivered() == ['lb-y']


# -- what is stored and logged ------------------------------------------------

def test_failures_are_recorded_in_the_entry_and_survive_a_restart(
        state, octavia, outbox, clock):
    octavia.refuse['lb-x'] = fx.StatusRejected(DB_DOWN)
    key = finish(state, 'lb-x')
    started = clock.time()
    run(outbox, clock, 1.5)                 # tries at 0, 0.5 and 1 s

    entry = state.outbox_entry(key)
    assert entry['status'] == {'loadbalancers': [
        {'id': 'lb-x', 'provisioning_status': 'ACTIVE'}]}
    delivery = entry['delivery']
    assert delivery['attempts'] == 3
    assert delivery['last_error'] == 'refused: ' + DB_DOWN
    assert delivery['first_failure_at'] == started
    assert delivery['refused_since'] == delivery['first_failure_at']
    assert delivery['next_attempt_at'] - delivery['last_attempt_at'] == 1.0

    # Another agent takes the cluster over: it honours the stored backoff
    # and counts on from the stored attempts and first refusal.
    successor = make_outbox(state, octavia, deadline=600.0)
    successor.deliver_all()
    assert len(octavia.tries('lb-x')) == 3
    clock.advance(0.5)
    successor.deliver_all()
    assert state.outbox_entry(key)['delivery']['attempts'] == 4
    clock.advance(600)
    successor.deliver_all()
    assert keys(state) == []


def test_error_text_holds_no_credentials_and_is_bounded():
    exc = fx.StatusRejected(
        'pools p-1: (pymysql.err.OperationalError) cannot reach '
        'mysql+pymysql://octavia:s3cret@db.example:3306/octavia\n' + 'x' * 900)
    text = outbox_mod.error_text(exc)
    assert 's3cret' not in text and 'mysql+pymysql://***@db.example' in text
    assert '\n' not in text
    assert len(text) == outbox_mod.ERROR_TEXT_MAX and text.endswith('...')


def test_an_entry_acknowledged_meanwhile_is_not_written_back(state):
    key = finish(state, 'lb-x')
    state.ack(key)
    assert state.record_delivery_failure(key, {'attempts': 1}) is False
    assert state.outbox(CLUSTER) == []


def test_one_warning_at_first_failure_then_at_most_one_a_minute(
        state, octavia, outbox, clock, caplog):
    octavia.refuse['lb-x'] = fx.StatusRejected(DB_DOWN)
    finish(state, 'lb-x')
    caplog.set_level(logging.DEBUG, logger='multilb.outbox')

    run(outbox, clock, 200)

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert gaps(octavia.tries('lb-x'))[-4:] == [30.0] * 4
    assert len(warnings) == 4               # at 0 s, then 62, 122, 182 s
    assert all(r.args[:2] == ('alpha', 'lb-x') for r in warnings)
    assert warnings[0].getMessage().startswith(
        'Cluster alpha: status update for load balancer lb-x not delivered '
        '(refused by Octavia, attempt 1, failing for 0s), will retry in 0.5s')


def test_a_late_delivery_is_logged_with_its_history(
        state, octavia, outbox, clock, caplog):
    octavia.refuse['lb-x'] = fx.StatusRejected(DB_DOWN)
    finish(state, 'lb-x')
    run(outbox, clock, 20)
    del octavia.refuse['lb-x']
    caplog.set_level(logging.INFO, logger='multilb.outbox')
    run(outbox, clock, 20)
    assert ('Cluster alpha: status update for load balancer lb-x delivered '
            'after 7 failed attempt(s) over 32s') in caplog.text


# -- configuration ------------------------------------------------------------

def test_the_deadline_is_read_from_multilb_options(tmp_path, octavia):
    rt = fx.make_runtime(tmp_path,
                         options={'status_delivery_deadline': '7200'})
    worker = fx.worker_mod.ClusterWorker(
        rt.clusters.clusters['alpha'], rt.state, octavia, rt.conf.multilb)
    assert worker.outbox.deadline == 7200.0
    other = tmp_path / 'defaults'
    other.mkdir()
    assert fx.make_runtime(other).conf.multilb.status_delivery_deadline \
        == outbox_mod.DEFAULT_DEADLINE == 86400.0


# -- a driver agent that took the update and did not answer in time ----------

def test_an_update_the_driver_agent_did_not_answer_is_not_resent_at_once(
        state, octavia, outbox, clock):
    """A copy sent while the first handler may still write it would only
    add to the driver agent's load: that entry waits BUSY_HOLD, the
    cluster's other entries only the short unreachable backoff."""
    octavia.refuse['lb-x'] = outbox_mod.octavia_mod.OctaviaBusy(
        'The driver agent did not respond in 30 seconds.')
    key = finish(state, 'lb-x')
    finish(state, 'lb-y')

    run(outbox, clock, outbox_mod.BUSY_HOLD - 1)
    assert octavia.tries('lb-x') == [0.0]
    assert octavia.delivered() == ['lb-y']
    delivery = state.outbox_entry(key)['delivery']
    assert delivery['last_error'].startswith('driver agent busy: ')

    run(outbox, clock, 2)
    assert len(octavia.tries('lb-x')) == 2

    del octavia.refuse['lb-x']
    run(outbox, clock, outbox_mod.BUSY_HOLD + 1)
    assert octavia.delivered() == ['lb-y', 'lb-x']
    assert keys(state) == []
