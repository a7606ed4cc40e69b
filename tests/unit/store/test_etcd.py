"""Tests of the etcd engine that need no etcd: URL parsing, error mapping.

The KVStore contract against a real etcd is in
tests/functional/test_store_engines.py.
"""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from multilb import exceptions
from multilb import store
from multilb.store import etcd


def _store(url: str) -> etcd.EtcdKVStore:
    return etcd.from_url(store.split_url(url))


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.fixture
def tls_files(tmp_path):
    paths = {}
    for name in ('ca_cert', 'cert_key', 'cert_cert'):
        paths[name] = tmp_path / (name + '.pem')
        paths[name].write_text('-----BEGIN X-----\n')
    return {name: str(path) for name, path in paths.items()}


class _Reply(http.server.BaseHTTPRequestHandler):
    status = 200
    body = b'{}'

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        self._answer()

    def _answer(self):
        self.send_response(self.status)
        self.send_header('Content-Length', str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_gateway():
    """An HTTP server that answers every request with _Reply's reply."""
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Reply)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,),
                              daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


class TestEtcdUrl:

    def test_defaults(self):
        kv = _store('etcd3+http://etcd.example')
        assert kv.endpoint == 'http://etcd.example:2379'
        assert kv._root == b'/multilb/'
        assert kv._timeout == etcd.DEFAULT_TIMEOUT == 5.0
        assert kv._api_path is None

    def test_options(self):
        kv = _store('etcd3+http://10.0.0.1:4001/?timeout=2.5'
                    '&prefix=/other/&api_version=v3beta')
        assert kv.endpoint == 'http://10.0.0.1:4001'
        assert kv._root == b'/other/'
        assert kv._timeout == 2.5
        assert kv._api_path == '/v3beta/'

    def test_ipv6_host(self):
        assert _store('etcd3+http://[::1]:2379').endpoint == \
            'http://[::1]:2379'

    def test_https_with_client_certificate(self, tls_files):
        kv = _store('etcd3+https://etcd:2379?api_version=v3'
                    '&ca_cert=%(ca_cert)s'
                    '&cert_key=%(cert_key)s&cert_cert=%(cert_cert)s'
                    % tls_files)
        session = kv._clients.get().session
        assert kv.endpoint == 'https://etcd:2379'
        assert session.verify == tls_files['ca_cert']
        assert session.cert == (tls_files['cert_cert'], tls_files['cert_key'])
        # REQUESTS_CA_BUNDLE would otherwise override verify.
        assert session.trust_env is False
        kv.close()

    @pytest.mark.parametrize('query', [
        'timeout=0', 'timeout=-1', 'timeout=abc', 'timeout=',
        'prefix=multilb/', 'prefix=/multilb', 'prefix=/', 'prefix=/é/',
        'api_version=v2', 'unknown=1', 'timeout=1&timeout=2',
    ])
    def test_bad_options_are_config_errors(self, query):
        with pytest.raises(exceptions.ConfigError):
            _store('etcd3+http://etcd:2379?' + query)

    def test_tls_options_need_https(self, tls_files):
        with pytest.raises(exceptions.ConfigError, match='https'):
            _store('etcd3+http://etcd?ca_cert=' + tls_files['ca_cert'])

    def test_client_key_and_certificate_go_together(self, tls_files):
        with pytest.raises(exceptions.ConfigError, match='together'):
            _store('etcd3+https://etcd?cert_key=' + tls_files['cert_key'])

    def test_missing_certificate_file(self, tmp_path):
        with pytest.raises(exceptions.ConfigError, match='not a file'):
            _store('etcd3+https://etcd?ca_cert=%s/none.pem' % tmp_path)

    @pytest.mark.parametrize('url', [
        'etcd3+http://', 'etcd3+http://etcd:2379/v3/', 'etcd3+http://etcd:x',
    ])
    def test_bad_urls_are_config_errors(self, url):
        with pytest.raises(exceptions.ConfigError):
            store.get_kv_store(url)

    def test_credentials_are_kept_out_of_sight(self):
        kv = _store('etcd3+http://multilb:s3cr%40t@etcd:2379,etcd2'
                    '?api_version=v3')
        assert kv._credentials == ('multilb', 's3cr@t')
        client = kv._clients.get()
        for shown in (kv.endpoint, repr(client)):
            assert 's3cr' not in shown
        kv.close()

    @pytest.mark.parametrize('url', ['etcd3+http://multilb@etcd',
                                     'etcd3+http://:pw@etcd',
                                     'etcd3+http://multilb:@etcd'])
    def test_half_credentials_are_a_config_error(self, url):
        with pytest.raises(exceptions.ConfigError, match='USER:PASSWORD'):
            store.get_kv_store(url)

    def test_get_kv_store_builds_etcd_store(self, monkeypatch):
        monkeypatch.setattr(store, '_cache', {})
        url = 'etcd3+http://etcd:2379?prefix=/x/'
        kv = store.get_kv_store(url)
        assert isinstance(kv, etcd.EtcdKVStore)
        assert store.get_kv_store(url) is kv


class TestEtcdErrors:

    def test_unreachable_etcd_raises_store_unavailable(self):
        port = _closed_port()
        kv = _store('etcd3+http://127.0.0.1:%d?timeout=1' % port)
        for call in (lambda: kv.get('k'), lambda: kv.get_prefix('k/'),
                     lambda: kv.commit(puts={'k': 'v'})):
            with pytest.raises(exceptions.StoreUnavailable) as info:
                call()
            assert 'http://127.0.0.1:%d' % port in str(info.value)
        kv.close()

    @pytest.mark.parametrize('status, body', [
        (503, b'{"error": "etcdserver: not capable"}'),
        (500, b'boom'),
        (400, b'{"error": "etcdserver: duplicate key given in txn request"}'),
        (200, b'not json'),
        (200, b'[1, 2]'),
        (200, b'{"kvs": [{"key": "not base64!"}]}'),
    ])
    def test_http_errors_raise_store_unavailable(self, fake_gateway,
                                                 monkeypatch, status, body):
        monkeypatch.setattr(_Reply, 'status', status)
        monkeypatch.setattr(_Reply, 'body', body)
        kv = _store('etcd3+http://127.0.0.1:%d?timeout=2&api_version=v3'
                    % fake_gateway.server_address[1])
        with pytest.raises(exceptions.StoreUnavailable, match='get_prefix'):
            kv.get_prefix('k/')
        with pytest.raises(exceptions.StoreUnavailable, match='during get'):
            kv.get('k')
        if status != 200:
            with pytest.raises(exceptions.StoreUnavailable, match='commit'):
                kv.commit(puts={'k': 'v'})
        kv.close()

    def test_failed_compare_without_succeeded_is_false(self, fake_gateway,
                                                       monkeypatch):
        monkeypatch.setattr(_Reply, 'body', b'{"header": {"revision": "7"}}')
        kv = _store('etcd3+http://127.0.0.1:%d?api_version=v3'
                    % fake_gateway.server_address[1])
        assert kv.commit(checks={'k': None}, puts={'k': 'v'}) is False
        kv.close()

    def test_timeout_raises_store_unavailable(self):
        with socket.socket() as listener:  # accepts, never answers
            listener.bind(('127.0.0.1', 0))
            listener.listen()
            kv = _store('etcd3+http://127.0.0.1:%d?timeout=0.3&api_version=v3'
                        % listener.getsockname()[1])
            with pytest.raises(exceptions.StoreUnavailable,
                               match='did not answer within 0.3s'):
                kv.get('k')
            kv.close()
