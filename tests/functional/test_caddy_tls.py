"""TERMINATED_HTTPS on real Caddy nodes: the caddy backend loads the
listener's certificate into every node, HTTPS clients get it, rotation swaps
it without a gap, and delete removes every trace (backend level: Octavia
cannot hand out real PEM here without Barbican)."""

import socket
import ssl

import pytest

from backends.caddy import backend as caddy_backend
from tests import tls as tls_material
from tests.functional import caddy_lab
from tools.localstack import ports

LB = '0c0ffee0-0000-4000-8000-00000000000a'


def graph(port, members, tls):
    return caddy_lab.backend_graph(LB, port, members.members, listener={
        'protocol': 'TERMINATED_HTTPS', 'default_tls_container_data': tls})


served_certificate = caddy_lab.served_certificate


def https_get(port, tls):
    """GET / over HTTPS, verifying the certificate and its name."""
    context = ssl.create_default_context(cadata=tls['certificate'])
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sock:
        with context.wrap_socket(
                sock, server_hostname=tls['primary_cn']) as conn:
            conn.sendall(('GET / HTTP/1.1\r\nHost: %s\r\nConnection: '
                          'close\r\n\r\n' % tls['primary_cn']).encode())
            reply = b''
            while chunk := conn.recv(65536):
                reply += chunk
    head, _sep, body = reply.decode().partition('\r\n\r\n')
    assert head.startswith('HTTP/1.1 200'), head
    return body


@pytest.fixture(scope='module')
def lab(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('caddytls', numbered=True)
    # listen on the graph's VIP (127.0.0.1), as in production
    with caddy_lab.backend_lab(workdir, 'tls', prefix='tm',
                               lab=member_lab, listen_address='') as found:
        yield found


def test_https_serves_the_listener_certificate_and_rotates(lab):
    backend, nodes, members = lab
    port = ports.free_port()
    first = tls_material.self_signed('www.example.test')
    backend.apply_loadbalancer(graph(port, members, first))
    bodies = {https_get(port, first) for _ in range(6)}
    assert bodies == {'member=%s\n' % m.name for m in members.members}
    subject = served_certificate(port, 'www.example.test').subject
    assert subject.rfc4514_string() == 'CN=www.example.test'

    # Rotation: the new certificate is served, the old one is gone.
    second = tls_material.self_signed('www.example.test')
    backend.apply_loadbalancer(graph(port, members, second))
    assert https_get(port, second).startswith('member=')
    for node in nodes.nodes:
        entries = caddy_backend.client_mod.CaddyClient(
            caddy_backend.transport_mod.Transport(
                node.admin_url, 3.0, 10.0)).get_certificates()
        assert len([e for e in entries if e['@id'].startswith(LB)]) == 1

    backend.delete_loadbalancer(LB)
    for node in nodes.nodes:
        client = caddy_backend.client_mod.CaddyClient(
            caddy_backend.transport_mod.Transport(node.admin_url, 3.0, 10.0))
        assert not [e for e in client.get_certificates()
                    if e['@id'].startswith(LB)]
        assert not [n for n in client.get_servers() if n.startswith(LB)]
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', port), timeout=2).close()
