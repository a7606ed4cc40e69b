"""The etcd client over several members (multilb.store.etcd_client): which
member a request goes to when one fails, and what is never sent twice.

Members here are small HTTP servers that answer like etcd's gateway, a
closed port (a dead member) and a socket that accepts and never answers (a
hung member). A real 3-member etcd cluster is exercised in
tests/functional/test_etcd_cluster.py.
"""

from __future__ import annotations

import http.server
import socket
import threading

import pytest

from multilb import exceptions
from multilb import store
from multilb.store import etcd_client
from tests.unit.store.test_etcd import _closed_port
from tests.unit.store.test_etcd import _store


class _Member(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the server's ``status`` and ``body`` and
    counts the requests per path."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get('Content-Length', 0)))
        server = self.server
        server.seen.append(self.path)
        self.send_response(server.status)
        self.send_header('Content-Length', str(len(server.body)))
        self.end_headers()
        self.wfile.write(server.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def members():
    started = []

    def start(status=200, body=b'{"succeeded": true, "kvs": []}'):
        server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), _Member)
        server.status, server.body, server.seen = status, body, []
        threading.Thread(target=server.serve_forever, args=(0.05,),
                         daemon=True).start()
        started.append(server)
        return server
    yield start
    for server in started:
        server.shutdown()
        server.server_close()


@pytest.fixture
def hung_member():
    """Accepts connections (the kernel does) and never answers."""
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen(16)
        yield listener.getsockname()[1]


def _url(*ports, query='timeout=0.5&api_version=v3'):
    return 'etcd3+http://%s?%s' % (
        ','.join('127.0.0.1:%d' % p for p in ports), query)


class TestMembersInTheUrl:

    def test_every_member_is_kept_in_order(self):
        kv = _store('etcd3+http://10.0.0.1:2379,10.0.0.2,[fd00::3]:4001')
        assert kv.endpoint == ('http://10.0.0.1:2379,10.0.0.2:2379,'
                               '[fd00::3]:4001')
        kv.close()

    @pytest.mark.parametrize('url', [
        'etcd3+http://a:2379,,b:2379', 'etcd3+http://a:2379,b:x',
        'etcd3+http://a:2379,a:2379', 'etcd3+http://a:2379,:2379',
    ])
    def test_a_bad_member_list_is_a_config_error_naming_it(self, url):
        with pytest.raises(exceptions.ConfigError, match='etcd endpoint'):
            store.get_kv_store(url)


class TestFailover:

    def test_a_dead_member_is_skipped_for_reads_and_writes(self, members):
        alive = members()
        dead = _closed_port()
        writer = _store(_url(dead, alive.server_address[1]))
        assert writer.commit(puts={'k': 'v'}) is True
        reader = _store(_url(dead, alive.server_address[1]))
        assert reader.get('k') is None
        assert alive.seen == ['/v3/kv/txn', '/v3/kv/range']
        writer.close()
        reader.close()

    def test_once_a_member_failed_every_thread_starts_with_the_next(
            self, members):
        alive = members()
        dead = _closed_port()
        kv = _store(_url(dead, alive.server_address[1]))
        kv.get('k')
        seen = []
        thread = threading.Thread(target=lambda: seen.append(kv.get('k')))
        thread.start()
        thread.join()
        assert seen == [None]
        assert len(alive.seen) == 2
        kv.close()

    def test_a_read_is_sent_again_after_a_hung_member(self, members,
                                                      hung_member):
        alive = members()
        kv = _store(_url(hung_member, alive.server_address[1]))
        assert kv.get_prefix('k/') == []
        assert alive.seen == ['/v3/kv/range']
        kv.close()

    def test_a_write_that_may_have_applied_is_not_sent_twice(
            self, members, hung_member):
        """The hung member received the transaction: it may commit it.
        Sending it to another member too could apply it twice, so the
        caller gets the error (and re-reads) and the next request goes to
        the next member."""
        alive = members()
        kv = _store(_url(hung_member, alive.server_address[1]))
        with pytest.raises(exceptions.StoreUnavailable) as info:
            kv.commit(checks={'k': None}, puts={'k': 'v'})
        assert alive.seen == []
        assert 'did not answer within 0.5s' in str(info.value)
        assert '127.0.0.1:%d' % hung_member in str(info.value)
        assert kv.commit(checks={'k': None}, puts={'k': 'v'}) is True
        assert alive.seen == ['/v3/kv/txn']
        kv.close()

    def test_a_plain_write_is_sent_again_after_a_hung_member(
            self, members, hung_member):
        """Puts and deletes without compares leave the same keys when
        applied twice."""
        alive = members()
        kv = _store(_url(hung_member, alive.server_address[1]))
        assert kv.commit(puts={'k': 'v'}, deletes=['old']) is True
        assert alive.seen == ['/v3/kv/txn']
        kv.close()

    def test_a_member_without_leader_is_skipped_for_reads_only(
            self, members):
        no_leader = members(status=503,
                            body=b'{"error": "etcdserver: no leader"}')
        alive = members()
        kv = _store(_url(no_leader.server_address[1],
                         alive.server_address[1]))
        assert kv.get('k') is None
        assert no_leader.seen == ['/v3/kv/range']
        assert alive.seen == ['/v3/kv/range']
        kv.close()

    def test_every_member_down_is_one_clear_error(self):
        ports = (_closed_port(), _closed_port())
        kv = _store(_url(*ports))
        with pytest.raises(exceptions.StoreUnavailable) as info:
            kv.get('k')
        message = str(info.value)
        assert 'connection refused' in message
        for raw in ('HTTPConnectionPool', 'Max retries', 'object at 0x',
                    'NewConnectionError'):
            assert raw not in message
        kv.close()

    def test_api_path_is_asked_of_the_first_member_that_answers(
            self, members):
        alive = members()
        alive.body = b'{"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}'
        # the member answers GET /version like etcd (do_GET below)
        _Member.do_GET = _Member.do_POST
        try:
            kv = _store(_url(_closed_port(), alive.server_address[1],
                             query='timeout=0.5'))
            client = kv._clients.get()
            assert client.api_path == '/v3/'
            kv.close()
        finally:
            del _Member.do_GET


class TestWording:

    @pytest.mark.parametrize('exc, words', [
        (ConnectionRefusedError(111, 'Connection refused'),
         'etcd member m:1: connection refused'),
        (ConnectionResetError(104, 'Connection reset by peer'),
         'etcd member m:1: connection reset'),
    ])
    def test_os_errors_in_a_few_words(self, exc, words):
        import requests
        wrapped = requests.exceptions.ConnectionError(exc)
        assert etcd_client.describe_request_error(wrapped, 'm:1') == words
