"""multilb on an etcd with authentication enabled (issue 13): the state
store and the agents' coordination log in with the user and password of
the URL, keep working when etcd's token expires, and a wrong password is
one clear error that never shows the password.

A real etcd (tools/localstack) with ``--auth-token-ttl=2``; users, roles
and ``auth enable`` go through etcd's own gateway API.
"""

import base64
import json
import time
import urllib.request

import pytest

from multilb import coordination
from multilb import exceptions
from multilb import store
from multilb.store import etcd
from tools.localstack.etcd import EtcdServer

PASSWORD = 'pa:ss@w/rd%'            # every character URLs must encode
QUOTED = 'pa%3Ass%40w%2Frd%25'
PREFIXES = ('/multilb/', 'tooz/groups/', '/tooz/locks')


def _b64(text):
    return base64.b64encode(text.encode()).decode()


def _call(server, path, body, token=None):
    request = urllib.request.Request(
        '%s/v3/%s' % (server.client_url, path), json.dumps(body).encode(),
        {'Content-Type': 'application/json',
         **({'Authorization': token} if token else {})})
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.load(resp)


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    etcd_server = EtcdServer(str(tmp_path_factory.mktemp('etcd-auth')),
                             extra_args=['--auth-token', 'simple',
                                         '--auth-token-ttl', '2'])
    etcd_server.start()
    try:
        _call(etcd_server, 'auth/user/add', {'name': 'root',
                                             'password': 'rootpw'})
        _call(etcd_server, 'auth/user/grant',
              {'user': 'root', 'role': 'root'})
        _call(etcd_server, 'auth/role/add', {'name': 'multilb'})
        # only what doc/source/admin/etcd.rst tells operators to grant:
        # multilb's prefix and tooz's group and lock keys
        for prefix in PREFIXES:
            _call(etcd_server, 'auth/role/grant', {
                'name': 'multilb', 'perm': {
                    'permType': 'READWRITE', 'key': _b64(prefix),
                    'range_end': _b64(prefix[:-1] + chr(ord(prefix[-1]) + 1))
                }})
        _call(etcd_server, 'auth/user/add', {'name': 'multilb',
                                             'password': PASSWORD})
        _call(etcd_server, 'auth/user/grant', {'user': 'multilb',
                                               'role': 'multilb'})
        _call(etcd_server, 'auth/enable', {})
        yield etcd_server
    finally:
        etcd_server.stop()


def _url(server, user='multilb', password=QUOTED):
    return 'etcd3+http://%s:%s@127.0.0.1:%d' % (user, password, server.port)


def test_without_credentials_etcd_refuses(server):
    kv = etcd.from_url(store.split_url(
        'etcd3+http://127.0.0.1:%d?api_version=v3' % server.port))
    with pytest.raises(exceptions.StoreUnavailable,
                       match='user name is empty'):
        kv.get('k')
    kv.close()


def test_the_store_logs_in_and_outlives_token_expiry(server):
    kv = etcd.from_url(store.split_url(_url(server) + '?api_version=v3'))
    assert kv.commit(checks={'k': None}, puts={'k': 'v1'})
    first_token = kv._clients.get()._token
    time.sleep(4)   # twice --auth-token-ttl: etcd forgot the token
    assert kv.get('k').value == 'v1'
    assert kv._clients.get()._token != first_token
    assert kv.commit(puts={'k': 'v2'})
    kv.close()


def test_a_wrong_password_is_one_clear_error_without_it(server):
    kv = etcd.from_url(store.split_url(
        _url(server, password='not-the-password') + '?api_version=v3'))
    with pytest.raises(exceptions.StoreUnavailable) as info:
        kv.get('k')
    message = str(info.value)
    assert "refused user 'multilb'" in message
    assert 'authentication failed' in message
    assert 'not-the-password' not in message
    kv.close()


def test_agents_coordinate_with_credentials(server):
    url = _url(server) + '?timeout=3&lock_timeout=3&membership_timeout=3'
    first, second = (coordination.Coordinator(url),
                     coordination.Coordinator(url))
    first.start()
    second.start()
    try:
        assert first.acquire('east')
        time.sleep(5)   # tokens expired; heartbeats logged in again
        assert not second.acquire('east')
        assert {first.member_id.decode(), second.member_id.decode()} <= \
            coordination.live_agents(url)
    finally:
        first.stop()
        second.stop()
