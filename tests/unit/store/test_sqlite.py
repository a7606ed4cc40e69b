"""Tests of the sqlite engine and of get_kv_store's URL handling and cache."""

from __future__ import annotations

import multiprocessing
import pathlib
import sqlite3
import subprocess
import sys
import threading

import pytest

from multilb import exceptions
from multilb import store
from multilb.store import sqlite
from tests.unit.store import contract

REPO_ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture
def fresh_cache(monkeypatch):
    """An empty get_kv_store cache; stores built in the test are closed."""
    cache: dict = {}
    monkeypatch.setattr(store, '_cache', cache)
    yield cache
    for kv in cache.values():
        kv.close()


class TestSqliteContract(contract.KVStoreContract):

    @pytest.fixture
    def kv(self, tmp_path):
        kv = sqlite.SqliteKVStore(str(tmp_path / 'state.db'))
        yield kv
        kv.close()


class TestSqliteEngine:

    def test_creates_directories_schema_and_wal(self, tmp_path):
        path = tmp_path / 'a' / 'b' / 'state.db'
        sqlite.SqliteKVStore(str(path)).close()
        conn = sqlite3.connect(path)
        tables = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert tables == {'kv', 'revision'}
        assert conn.execute('PRAGMA journal_mode').fetchone()[0] == 'wal'
        conn.close()

    def test_busy_timeout_is_at_least_ten_seconds(self, tmp_path):
        kv = sqlite.SqliteKVStore(str(tmp_path / 'state.db'))
        conn = kv._conns.get()
        assert conn.execute('PRAGMA busy_timeout').fetchone()[0] >= 10_000
        kv.close()

    def test_locked_database_raises_store_unavailable(self, tmp_path):
        path = str(tmp_path / 'state.db')
        kv = sqlite.SqliteKVStore(path, busy_timeout=0.2)
        kv.commit(puts={'k': 'v'})
        blocker = sqlite3.connect(path, isolation_level=None)
        blocker.execute('BEGIN IMMEDIATE')
        try:
            with pytest.raises(exceptions.StoreUnavailable,
                               match='locked') as info:
                kv.commit(puts={'k': 'w'})
            assert path in str(info.value)
            assert kv.get('k').value == 'v'  # WAL: readers never wait
        finally:
            blocker.execute('ROLLBACK')
            blocker.close()
        assert kv.commit(puts={'k': 'w'})
        kv.close()

    def test_unusable_path_raises_store_unavailable(self, tmp_path):
        (tmp_path / 'file').write_text('not a directory')
        with pytest.raises(exceptions.StoreUnavailable, match='setup'):
            sqlite.SqliteKVStore(str(tmp_path / 'file' / 'state.db'))

    def test_versions_are_not_reused_after_reopening(self, tmp_path):
        path = str(tmp_path / 'state.db')
        first = sqlite.SqliteKVStore(path)
        first.commit(puts={'k': 'v'})
        version = first.get('k').version
        first.commit(deletes=['k'])
        first.close()
        second = sqlite.SqliteKVStore(path)
        second.commit(puts={'k': 'v'})
        assert second.get('k').version > version
        second.close()

    def test_two_stores_share_one_file(self, tmp_path):
        path = str(tmp_path / 'state.db')
        one, two = sqlite.SqliteKVStore(path), sqlite.SqliteKVStore(path)
        one.commit(puts={'k': 'v'})
        entry = two.get('k')
        assert entry.value == 'v'
        assert two.commit(checks={'k': entry.version}, puts={'k': 'w'})
        assert not one.commit(checks={'k': entry.version}, puts={'k': 'x'})
        one.close()
        two.close()

    def test_connections_of_ended_threads_are_closed(self, tmp_path):
        kv = sqlite.SqliteKVStore(str(tmp_path / 'state.db'))
        for _ in range(5):
            thread = threading.Thread(target=kv.get, args=('k',))
            thread.start()
            thread.join()
        kv.get('k')
        assert len(kv._conns._owned) == 1
        kv.close()


class TestGetKvStore:

    def test_absolute_sqlite_url(self, tmp_path, fresh_cache):
        path = tmp_path / 'dir' / 'state.db'
        kv = store.get_kv_store('sqlite:///' + str(path))
        assert isinstance(kv, sqlite.SqliteKVStore)
        assert kv.path == str(path)
        assert path.exists()

    def test_relative_sqlite_url_is_resolved(self, tmp_path, monkeypatch,
                                             fresh_cache):
        monkeypatch.chdir(tmp_path)
        kv = store.get_kv_store('sqlite:///rel/state.db')
        assert kv.path == str(tmp_path / 'rel' / 'state.db')

    def test_same_url_same_store(self, tmp_path, fresh_cache):
        url = 'sqlite:///%s/state.db' % tmp_path
        other = 'sqlite:///%s/other.db' % tmp_path
        assert store.get_kv_store(url) is store.get_kv_store(url)
        assert store.get_kv_store(url) is not store.get_kv_store(other)

    def test_forked_child_gets_its_own_store(self, tmp_path, fresh_cache):
        url = 'sqlite:///%s/state.db' % tmp_path
        parent_store = store.get_kv_store(url)
        parent_store.commit(puts={'k': 'parent'})
        ctx = multiprocessing.get_context('fork')
        receiver, sender = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_child_checks_store,
                            args=(url, parent_store, sender))
        child.start()
        sender.close()
        try:
            assert receiver.poll(60)
            assert receiver.recv() == (False, True, 'parent')
        finally:
            child.join(timeout=10)
        assert store.get_kv_store(url) is parent_store
        assert parent_store.get('k').value == 'child'

    @pytest.mark.parametrize('url', [
        'mysql://user:s3cret@db.example/multilb',
        'etcd://user:s3cret@host:2379',
        'file:///tmp/x',
        'state.db',
    ])
    def test_unknown_scheme_is_a_config_error(self, url, fresh_cache):
        with pytest.raises(exceptions.ConfigError) as info:
            store.get_kv_store(url)
        message = str(info.value)
        assert repr(url.split('://')[0] if '://' in url else '') in message
        assert 'sqlite:////' in message and 'etcd3+http://' in message
        assert 's3cret' not in message

    @pytest.mark.parametrize('url', [
        '', '  ', 'sqlite://', 'sqlite:///', 'sqlite:///dir/',
        'sqlite://host/state.db', 'sqlite:////tmp/x.db?timeout=1',
    ])
    def test_bad_sqlite_urls_are_config_errors(self, url, fresh_cache):
        with pytest.raises(exceptions.ConfigError):
            store.get_kv_store(url)

    def test_sqlite_does_not_import_etcd3gw(self, tmp_path):
        code = ('import sys, multilb.store as s; '
                's.get_kv_store(sys.argv[1]).commit(puts={"k": "v"}); '
                'assert "etcd3gw" not in sys.modules')
        subprocess.run([sys.executable, '-c', code,
                        'sqlite:///%s/state.db' % tmp_path],
                       check=True, cwd=REPO_ROOT, timeout=60)

    def test_redact_url_hides_password(self):
        assert store.redact_url('etcd3+http://u:pw@h:1/?a=b') == \
            'etcd3+http://***@h:1/?a=b'
        assert store.redact_url('etcd3+http://h:1/?token=t&timeout=5') == \
            'etcd3+http://h:1/?token=***&timeout=5'
        assert store.redact_url('sqlite:////x.db') == 'sqlite:////x.db'


def _child_checks_store(url, parent_store, pipe):
    child_store = store.get_kv_store(url)
    same = child_store is parent_store
    cached = store.get_kv_store(url) is child_store
    value = child_store.get('k').value
    child_store.commit(puts={'k': 'child'})
    pipe.send((same, cached, value))
    pipe.close()
