"""The per-cluster circuit breaker (backends.transport.ClusterBreaker)
in front of Transports talking to a tiny real HTTP server."""

import json
import pathlib
import threading

import pytest

from backends import exceptions
from backends import transport as transport_mod
from backends.caddy import client as caddy_client
from tests.unit.backends.test_transport import free_port
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


# -- a tenant's rejected config is not a failure of the cluster -------------

CADDY_ERRORS = json.loads((pathlib.Path(__file__).parent / 'caddy' /
                           'caddy_errors.json').read_text())['errors']


def caddy_answer(name):
    """Caddy 2.11's real answer (caddy/caddy_errors.json), replayed."""
    record = CADDY_ERRORS[name]
    return reply(record['status'], record['body'])


def caddy_node(srv, cb):
    """A CaddyClient over a Transport as the caddy backend builds it."""
    return caddy_client.CaddyClient(make(
        srv, breaker=cb, retries=0, classify=caddy_client.classify))


def test_a_burst_of_rejected_configs_leaves_it_closed(server):  # noqa: F811
    """More rejected configs than fail_max, from Caddy's real answers
    (a tenant's regex that does not compile, with transient words in it):
    each is a BackendRejected, and the breaker never counts one."""
    names = ['regex_hostile_words', 'regex_hostile_tail', 'listener_repeated',
             'regex_unbalanced', 'unknown_field', 'remote_ip_invalid']
    server.on('/config/apps/http/servers/lb--l',
              *[caddy_answer(name) for name in names])
    store = MemoryRecord()
    cb = breaker(store)          # fail_max 3
    node = caddy_node(server, cb)
    for _ in names:
        with pytest.raises(exceptions.BackendRejected):
            node.put_server('lb--l', {})
    assert cb.state == transport_mod.BREAKER_CLOSED
    assert cb.snapshot()['failures'] == 0 and store.saved == []
    # the node answered about one listener only: retried, never counted
    server.on('/config/apps/http/servers/lb--l',
              caddy_answer('address_in_use'),
              caddy_answer('address_not_assigned'),
              caddy_answer('too_many_open_files_listener'),
              caddy_answer('address_in_use'))
    for _ in range(4):
        with pytest.raises(exceptions.BackendUnavailable) as err:
            node.put_server('lb--l', {})
        assert not getattr(err.value, 'breaker_open', False)
    assert cb.state == transport_mod.BREAKER_CLOSED


def test_real_failures_still_open_it_between_rejections(server):  # noqa: F811,E501
    path = '/config/apps/http/servers/lb--l'
    server.on(path,
              caddy_answer('regex_unbalanced'),
              reply(500, 'Internal Server Error'),      # not Caddy's words
              caddy_answer('regex_hostile_words'),      # counts nothing...
              reply(502, {'error': 'upstream timed out'}),
              reply(500),                               # no text at all
              reply(503, 'unavailable'))
    cb = breaker()               # fail_max 3
    node = caddy_node(server, cb)
    with pytest.raises(exceptions.BackendRejected):
        node.put_server('lb--l', {})
    fail(node.transport, path)
    assert cb.snapshot()['failures'] == 1
    with pytest.raises(exceptions.BackendRejected):
        node.put_server('lb--l', {})   # ...and resets the count
    assert cb.snapshot()['failures'] == 0
    for _ in range(3):
        fail(node.transport, path)
    assert cb.state == transport_mod.BREAKER_OPEN
    # a node that does not answer at all opens it too
    dead = caddy_node('http://127.0.0.1:%d' % free_port(), breaker())
    for _ in range(3):
        with pytest.raises(exceptions.BackendUnavailable):
            dead.admin()
    assert dead.transport.breaker.state == transport_mod.BREAKER_OPEN
