"""TERMINATED_HTTPS end to end: certificates go from Octavia's certificate
manager (its local one: no Barbican here) through the real Octavia API and
driver agent, multilb and the caddy backend into a cluster of two real Caddy
nodes, which serve them to real HTTPS clients in front of real members.
"""

import os
import socket
import ssl

import pytest
from cryptography.hazmat.primitives import serialization

from tests import tls as tls_material
from tests.functional import caddy_lab as lab
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import ACTIVE, gone, wait_lb
from tools.localstack import ports

HOST = 'www.example.test'
SNI_HOST = 'api.example.test'


@pytest.fixture(scope='module')
def https_fleet(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('caddyhttps', numbered=True)
    with lab.caddy_fleet(workdir, {'tls': 2}, members=2, prefix='hm',
                         lab=member_lab, local_certificates=True) as (
                             fleet, nodes, members):
        yield fleet, nodes['tls'], members


admin_get = lab.admin_get
served_certificate = lab.served_certificate


def node_holds(node, lb_id):
    """(server names, load_pem @ids) of ``lb_id`` on one Caddy node."""
    servers = admin_get(node, '/config/apps/http/servers') or {}
    tls_app = admin_get(node, '/config/apps/tls') or {}
    pems = (tls_app.get('certificates') or {}).get('load_pem') or []
    return ([name for name in servers if name.startswith(lb_id)],
            [entry.get('@id', '') for entry in pems
             if entry.get('@id', '').startswith(lb_id)])


def same_certificate(served, tls):
    return served.public_bytes(serialization.Encoding.PEM).decode() == \
        tls['certificate']


def https_get(port, tls, path='/'):
    """GET over HTTPS trusting only ``tls``'s certificate and checking it
    names ``tls['primary_cn']`` (sent as SNI and Host); returns the body."""
    context = ssl.create_default_context(cadata=tls['certificate'])
    name = tls['primary_cn']
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=name) as conn:
            conn.sendall(('GET %s HTTP/1.1\r\nHost: %s\r\nConnection: '
                          'close\r\n\r\n' % (path, name)).encode())
            reply = b''
            while chunk := conn.recv(65536):
                reply += chunk
    head, _sep, body = reply.decode().partition('\r\n\r\n')
    assert head.startswith('HTTP/1.1 200'), head
    return body


def files_holding(root, markers, skip):
    """Paths under ``root`` (except the ``skip`` directories) whose bytes
    contain any of ``markers``."""
    wanted = [m.encode() for m in markers]
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs
                      if os.path.join(directory, d) not in skip]
        for name in files:
            path = os.path.join(directory, name)
            try:
                with open(path, 'rb') as f:
                    data = f.read()
            except OSError:     # sockets, files removed meanwhile
                continue
            if any(m in data for m in wanted):
                found.append(os.path.relpath(path, root))
    return sorted(found)


def test_terminated_https_serves_rotates_and_leaves_no_key_behind(
        https_fleet):
    fleet, nodes, members = https_fleet
    lbc = fleet.connection().load_balancer
    first = tls_material.self_signed(HOST)
    sni = tls_material.self_signed(SNI_HOST)
    port = ports.free_port()
    lb = lbc.create_load_balancer(
        name='https-lb', project_id='proj-https',
        vip_subnet_id=fleet_mod.VIP_SUBNET,
        listeners=[{
            'name': 'https', 'protocol': 'TERMINATED_HTTPS',
            'protocol_port': port,
            'default_tls_container_ref': fleet.store_certificate(first),
            'sni_container_refs': [fleet.store_certificate(sni)],
            'default_pool': {
                'name': 'https-pool', 'protocol': 'HTTP',
                'lb_algorithm': 'ROUND_ROBIN',
                'members': [{'address': m.address, 'protocol_port': m.port}
                            for m in members.members]}}])
    lb = wait_lb(fleet.connection(), lb.id)
    assert lb.provisioning_status == ACTIVE
    listener = lbc.get_listener(lb.listeners[0]['id'])
    assert listener.provisioning_status == ACTIVE

    # Verified HTTPS (the client trusts only the given certificate and
    # checks its name) reaches both members.
    bodies = {https_get(port, first) for _ in range(8)}
    assert bodies == {'member=%s\n' % m.name for m in members.members}
    # SNI picks the SNI certificate; other names get the default one.
    assert https_get(port, sni).startswith('member=')
    for _ in range(4):      # several connections: either node may answer
        assert same_certificate(served_certificate(port, HOST), first)
        assert same_certificate(served_certificate(port, SNI_HOST), sni)
        assert same_certificate(
            served_certificate(port, 'other.example.test'), first)
    for node in nodes.nodes:
        servers, pems = node_holds(node, lb.id)
        assert len(servers) == 1 and len(pems) == 2, (node, servers, pems)

    # Rotation through the API: the new certificate is served once the
    # load balancer is ACTIVE again, the old one is gone from every node.
    second = tls_material.self_signed(HOST)
    lbc.update_listener(
        listener, default_tls_container_ref=fleet.store_certificate(second))
    assert wait_lb(fleet.connection(), lb.id).provisioning_status == ACTIVE
    for _ in range(4):
        assert same_certificate(served_certificate(port, HOST), second)
        assert same_certificate(served_certificate(port, SNI_HOST), sni)
    assert https_get(port, second).startswith('member=')
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(port, first)
    for node in nodes.nodes:
        assert len(node_holds(node, lb.id)[1]) == 2
    # The key markers do find the keys where they belong (Octavia's store:
    # PKCS#8 as given; the nodes' autosaved config: as Octavia re-encoded
    # them for the provider), so their absence below means something.
    markers = [m for tls in (first, sni, second)
               for m in tls_material.key_markers(tls)]
    assert files_holding(fleet.cert_dir, markers, skip=())
    for node in nodes.nodes:
        assert files_holding(node.dir, tls_material.key_markers(second),
                             skip=())

    lbc.delete_load_balancer(lb, cascade=True)
    fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                       what='LB gone')
    for node in nodes.nodes:
        assert node_holds(node, lb.id) == ([], [])
        # The only load balancer of this cluster: no certificate at all.
        tls_app = admin_get(node, '/config/apps/tls') or {}
        assert not (tls_app.get('certificates') or {}).get('load_pem')
    with pytest.raises(OSError):
        socket.create_connection(('127.0.0.1', port), timeout=2).close()

    # No private key anywhere in what the stack wrote: Octavia's and
    # multilb's logs, the etcd data (multilb's store), MariaDB, the Caddy
    # nodes' autosaved config -- except Octavia's own certificate store.
    assert files_holding(fleet.workdir, markers,
                         skip={fleet.cert_dir}) == []
