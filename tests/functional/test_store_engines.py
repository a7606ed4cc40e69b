"""The KVStore contract against a real etcd, plus etcd-only behaviour.

Each test module run starts its own etcd (tools/localstack) on free ports;
nothing assumes a running etcd. Every test works under its own key prefix,
so tests sharing the server never see each other's keys.
"""

from __future__ import annotations

import base64
import shutil
import time
import uuid

import pytest
import requests

from multilb import exceptions
from multilb import store
from tests.unit.store import contract
from tools.localstack.etcd import EtcdServer

pytestmark = pytest.mark.skipif(shutil.which('etcd') is None,
                                reason='etcd is not installed')

TIMEOUT = 2


def _url(server, **options) -> str:
    options.setdefault('prefix', '/test-%s/' % uuid.uuid4().hex)
    options.setdefault('timeout', TIMEOUT)
    query = '&'.join('%s=%s' % item for item in options.items())
    return '%s?%s' % (server.store_url, query)


def _raw_range(server, key: bytes) -> list[dict]:
    """Read etcd directly, bypassing multilb's prefix handling."""
    reply = requests.post(server.client_url + '/v3/kv/range',
                          json={'key': base64.b64encode(key).decode()},
                          timeout=TIMEOUT)
    reply.raise_for_status()
    return reply.json().get('kvs', [])


@pytest.fixture(scope='module')
def etcd_server(tmp_path_factory):
    server = EtcdServer(str(tmp_path_factory.mktemp('etcd'))).start()
    yield server
    server.stop()


@pytest.fixture
def kv(etcd_server):
    kv = store.get_kv_store(_url(etcd_server))
    yield kv
    kv.close()


class TestEtcdContract(contract.KVStoreContract):
    """Everything the sqlite engine does, etcd does the same way."""


class TestEtcdEngine:

    def test_keys_live_under_the_prefix(self, etcd_server):
        kv = store.get_kv_store(_url(etcd_server, prefix='/test-raw/'))
        kv.commit(puts={'lb/abc': 'ü'})
        (raw,) = _raw_range(etcd_server, b'/test-raw/lb/abc')
        assert base64.b64decode(raw['value']).decode('utf-8') == 'ü'
        assert kv.get('lb/abc').version == int(raw['mod_revision'])
        assert _raw_range(etcd_server, b'lb/abc') == []
        kv.close()

    def test_prefixes_isolate_stores(self, etcd_server):
        one = store.get_kv_store(_url(etcd_server))
        two = store.get_kv_store(_url(etcd_server))
        one.commit(puts={'k': 'one'})
        assert two.get('k') is None
        assert two.get_prefix('') == []
        assert [e.value for e in one.get_prefix('')] == ['one']

    def test_get_prefix_reads_pages_as_one_snapshot(self, kv, monkeypatch):
        kv.page_size = 3
        keys = ['p/%02d' % i for i in range(10)]
        kv.commit(puts={key: key for key in keys})
        post = kv._post
        calls = []

        def post_then_write(path, payload):
            reply = post(path, payload)
            calls.append(path)
            if len(calls) == 1:
                kv.commit(puts={'p/05a': 'later'}, deletes=['p/09'])
            return reply

        monkeypatch.setattr(kv, '_post', post_then_write)
        assert [e.key for e in kv.get_prefix('p/')] == keys
        assert calls.count('kv/range') == 4  # 10 keys, 3 per page

    def test_get_prefix_reads_again_after_compaction(self, kv, etcd_server,
                                                     monkeypatch):
        kv.page_size = 2
        keys = ['c/%d' % i for i in range(5)]
        kv.commit(puts={key: key for key in keys})
        post = kv._post
        calls = []

        def post_then_compact(path, payload):
            reply = post(path, payload)
            calls.append(path)
            if len(calls) == 1:
                kv.commit(puts={'c/9': 'new'})
                revision = int(kv.get('c/9').version)
                requests.post(etcd_server.client_url + '/v3/kv/compaction',
                              json={'revision': revision},
                              timeout=TIMEOUT).raise_for_status()
            return reply

        monkeypatch.setattr(kv, '_post', post_then_compact)
        assert [e.key for e in kv.get_prefix('c/')] == keys + ['c/9']
        assert calls.count('kv/range') > 3  # the first read failed

    def test_http_error_is_store_unavailable(self, etcd_server):
        # etcd 3.4 serves /v3/ and /v3beta/ only.
        kv = store.get_kv_store(_url(etcd_server, api_version='v3alpha'))
        with pytest.raises(exceptions.StoreUnavailable) as info:
            kv.get('k')
        assert etcd_server.client_url in str(info.value)

    def test_explicit_api_version(self, etcd_server):
        kv = store.get_kv_store(_url(etcd_server, api_version='v3'))
        assert kv.commit(puts={'k': 'v'})
        assert kv.get('k').value == 'v'


class TestEtcdOutage:
    """An etcd of its own: stopping it must not disturb the other tests."""

    def test_stopped_etcd_raises_and_data_survives_restart(self, tmp_path):
        server = EtcdServer(str(tmp_path)).start()
        try:
            kv = store.get_kv_store(_url(server))
            kv.commit(puts={'lb/1': 'kept', 'lb/2': 'also kept'})
            before = kv.get_prefix('lb/')

            server.stop()
            for call in (lambda: kv.get('lb/1'),
                         lambda: kv.get_prefix('lb/'),
                         lambda: kv.commit(puts={'lb/3': 'lost'})):
                started = time.monotonic()
                with pytest.raises(exceptions.StoreUnavailable) as info:
                    call()
                # Bounded by the timeout, never a hang (generous margin).
                assert time.monotonic() - started < TIMEOUT + 10
                assert server.client_url in str(info.value)

            server.start()
            assert kv.get_prefix('lb/') == before
            assert kv.commit(checks={'lb/1': before[0].version},
                             puts={'lb/1': 'changed'})
            assert kv.get('lb/1').value == 'changed'
            kv.close()
        finally:
            server.stop()


class TestEtcdWatch:
    """The wake-up hint the agent uses for new work (KVStore.watch_prefix)."""

    @staticmethod
    def _seen(kv, prefix='work/'):
        seen = []
        stop = kv.watch_prefix(prefix, seen.append)
        return seen, stop

    @staticmethod
    def _until(predicate, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.02)
        return predicate()

    def test_writes_under_the_prefix_are_seen_others_not(self, kv):
        seen, stop = self._seen(kv)
        try:
            time.sleep(0.3)             # the watch is made
            kv.commit(puts={'work/alpha/lb-1/0001': '{}', 'lb/lb-1': '{}'})
            kv.commit(deletes=['work/alpha/lb-1/0001'])
            assert self._until(lambda: len(seen) >= 2)
        finally:
            stop()
        assert seen == ['work/alpha/lb-1/0001', 'work/alpha/lb-1/0001']

    def test_watch_comes_back_after_etcd_restarts(self, tmp_path):
        """etcd3gw's own watches hang for ever once etcd restarts; ours
        is made again (at most WATCH_IDLE seconds later, or at once when
        the stream breaks)."""
        server = EtcdServer(str(tmp_path)).start()
        try:
            kv = store.get_kv_store(_url(server))
            seen, stop = self._seen(kv)
            try:
                time.sleep(0.3)
                kv.commit(puts={'work/a/lb/1': '{}'})
                assert self._until(lambda: 'work/a/lb/1' in seen)
                server.stop()
                server.start()
                assert self._until(lambda: self._write(kv, 'work/a/lb/2')
                                   and 'work/a/lb/2' in seen, timeout=40)
            finally:
                stop()
                kv.close()
        finally:
            server.stop()

    @staticmethod
    def _write(kv, key):
        try:
            kv.commit(puts={key: '{}'})
        except exceptions.StoreUnavailable:
            return False
        return True
