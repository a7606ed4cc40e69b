"""The per-cluster circuit breaker (backends.transport.ClusterBreaker)
in front of Transports talking to a tiny real HTTP server."""

import threading

import pytest

from backends import exceptions
from backends import transport as transport_mod
from tests.unit.backends.test_transport import make
from tests.unit.backends.test_transport import reply
from tests.unit.backends.test_transport import server  # noqa: F401


class MemoryRecord:
    """The shared record, as the state store keeps it."""

    def __init__(self, record=None):
        self.record = record
        self.saved = []

    def load(self):
        return self.record

    def save(self, record):
        self.record = dict(record)
        self.saved.append(record['state'])


def breaker(store=None, **kwargs):
    kwargs.setdefault('fail_max', 3)
    kwargs.setdefault('reset_timeout', 0.5)
    return transport_mod.ClusterBreaker('c1', store=store, **kwargs)


def fail(t, path='/boom'):
    with pytest.raises(exceptions.BackendUnavailable) as err:
        t.request('POST', path)
    return err.value


def test_opens_after_consecutive_failures_and_then_fails_fast(server):  # noqa: F811,E501
    server.on('/boom', reply(500, 'kaput'))
    store = MemoryRecord()
    cb = breaker(store)
    t = make(server, breaker=cb, retries=0)
    for _ in range(3):
        assert 'HTTP 500' in str(fail(t))
    assert cb.state == transport_mod.BREAKER_OPEN
    assert store.saved == ['open'] and store.record['opened_at']
    hits = server.hits[('POST', '/boom')]
    error = fail(t)
    assert getattr(error, 'breaker_open', False)
    assert 'circuit breaker open' in str(error) and 'kaput' in str(error)
    assert server.hits[('POST', '/boom')] == hits   # never reached


def test_a_successful_trial_after_the_reset_timeout_closes_it(server):  # noqa: F811,E501
    server.on('/boom', *[reply(500, 'kaput')] * 3, reply(200, 'back'))
    store = MemoryRecord()
    cb = breaker(store, reset_timeout=0.2)
    t = make(server, breaker=cb, retries=0)
    for _ in range(3):
        fail(t)
    threading.Event().wait(0.3)
    assert t.request('POST', '/boom') == (200, 'back')
    assert cb.state == transport_mod.BREAKER_CLOSED
    assert store.saved == ['open', 'half-open', 'closed']


def test_a_failed_trial_opens_it_again(server):  # noqa: F811
    server.on('/boom', reply(500, 'kaput'))
    cb = breaker(reset_timeout=0.2)
    t = make(server, breaker=cb, retries=0)
    for _ in range(3):
        fail(t)
    threading.Event().wait(0.3)
    assert not getattr(fail(t), 'breaker_open', False)   # the trial ran
    assert cb.state == transport_mod.BREAKER_OPEN
    assert getattr(fail(t), 'breaker_open', False)


def test_rejections_and_busy_answers_do_not_count(server):  # noqa: F811
    server.on('/bad', reply(400, 'invalid'))
    server.on('/busy', reply(429, 'slow down', {'Retry-After': '1'}))
    server.on('/boom', reply(502, 'gateway'))
    cb = breaker()
    t = make(server, breaker=cb, retries=0, retry_after_max=0.01)
    for _ in range(5):
        with pytest.raises(exceptions.BackendRejected):
            t.request('POST', '/bad')
        fail(t, '/busy')
    assert cb.state == transport_mod.BREAKER_CLOSED
    fail(t)
    fail(t)
    fail(t, '/busy')       # not a failure: the count starts again
    fail(t)
    fail(t)
    assert cb.state == transport_mod.BREAKER_CLOSED
    fail(t)
    assert cb.state == transport_mod.BREAKER_OPEN


def test_calls_through_one_breaker_run_concurrently(server):  # noqa: F811
    """pybreaker alone would serialise them (it locks around the call)."""
    inside = threading.Semaphore(0)
    release = threading.Event()
    cb = breaker()

    def slow():
        inside.release()
        release.wait(5)
        return 'done'

    threads = [threading.Thread(target=cb.guard, args=(slow,))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    # all three are inside the protected call at the same time
    assert all(inside.acquire(timeout=5) for _ in threads)
    release.set()
    for thread in threads:
        thread.join()


def test_one_trial_at_a_time(server):  # noqa: F811
    server.on('/boom', reply(500, 'kaput'))
    cb = breaker(reset_timeout=0.1)
    t = make(server, breaker=cb, retries=0)
    for _ in range(3):
        fail(t)
    threading.Event().wait(0.2)
    started, release = threading.Event(), threading.Event()

    def trial():
        started.set()
        release.wait(5)
        return 'ok'

    runner = threading.Thread(target=cb.guard, args=(trial,))
    runner.start()
    assert started.wait(5)
    with pytest.raises(exceptions.BackendUnavailable) as err:
        cb.guard(lambda: 'second')
    assert err.value.breaker_open
    release.set()
    runner.join()
    assert cb.state == transport_mod.BREAKER_CLOSED
    assert cb.guard(lambda: 'after') == 'after'


def test_a_new_owner_starts_from_the_shared_record():
    store = MemoryRecord()
    first = breaker(store, reset_timeout=60)
    first.trip('probe: no node answers')
    successor = breaker(MemoryRecord(dict(store.record)), reset_timeout=60)
    assert successor.state == transport_mod.BREAKER_OPEN
    with pytest.raises(exceptions.BackendUnavailable) as err:
        successor.guard(lambda: 'never called')
    assert 'no node answers' in str(err.value)
    # a trial that died with its owner: open, not half-open
    crashed = breaker(MemoryRecord(dict(store.record, state='half-open')))
    assert crashed.state == transport_mod.BREAKER_OPEN


def test_an_unreadable_record_starts_closed(caplog):
    class Broken:
        def load(self):
            raise OSError('etcd down')

        def save(self, record):
            raise OSError('etcd down')

    cb = breaker(Broken())
    assert cb.state == transport_mod.BREAKER_CLOSED
    cb.trip('probe failed')      # sharing fails: the breaker still works
    assert cb.state == transport_mod.BREAKER_OPEN
    assert 'not shared' in caplog.text
