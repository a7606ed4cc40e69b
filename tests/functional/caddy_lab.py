"""Real Caddy clusters and member servers for the functional tests.

* :func:`caddy_fleet`: the whole stack (Fleet) whose clusters are real
  Caddy nodes, plus real member HTTP servers;
* :func:`backend_lab`: one started ``CaddyBackend`` over real nodes, for
  tests below the Octavia API;
* helpers to read what a node holds and to build the usual listener.

The member servers live in the member lab (tools/localstack/netns.py, the
session's ``member_lab`` fixture of conftest.py), each on an address of its
own in a network namespace, never on loopback: multilb refuses loopback
members.  The Caddy nodes (root namespace) reach them through the lab's
veth pair, and so do the tests.
"""

import contextlib
import socket
import ssl

from cryptography import x509

from backends.caddy import backend as caddy_backend
from multilb.conf import clusters as cluster_conf
from tests.functional import fleet as fleet_mod
from tools.localstack import caddy as ls_caddy
from tools.localstack import members as ls_members

BACKEND_OPTIONS = {'listen_address': '127.0.0.1', 'connect_timeout': 3.0,
                   'read_timeout': 15.0, 'probe_timeout': 2.0,
                   'divergence_check_interval': 1.0,
                   'ca_bundle': '', 'client_cert': '', 'client_key': ''}


def _lab_required(lab, members):
    if members and lab is None:
        raise ValueError('member servers live in the member lab: pass '
                         'lab= (the member_lab fixture)')


@contextlib.contextmanager
def caddy_fleet(workdir, clusters, members=(), prefix='m', options=None,
                lab=None, **fleet_kwargs):
    """``(fleet, {cluster: CaddyCluster}, MemberPool or [MemberServer])``.

    :param clusters: ``{name: node count}`` (every cluster backend caddy,
        listeners on 127.0.0.1, capacity 20).
    :param members: a count (a MemberPool named ``<prefix><i>``) or names
        (one MemberServer each, returned as a list).
    :param options: extra ``{cluster: {option: value}}``.
    :param lab: the started MemberLab the members live in.
    """
    _lab_required(lab, members)
    workdir = str(workdir)
    nodes = {name: ls_caddy.CaddyCluster(workdir, name, nodes=count)
             for name, count in clusters.items()}
    if isinstance(members, int):
        pool = ls_members.MemberPool(members, prefix=prefix, lab=lab)
        servers = [pool]
    else:
        pool = [ls_members.MemberServer(name, lab=lab) for name in members]
        servers = pool
    cluster_options = {
        name: dict({'backend': 'caddy', 'listen_address': '127.0.0.1',
                    'divergence_check_interval': 1},
                   **(options or {}).get(name, {}))
        for name in clusters}
    fleet = fleet_mod.Fleet(workdir, {name: 20 for name in clusters},
                            cluster_options=cluster_options, **fleet_kwargs)
    try:
        for name, cluster in nodes.items():
            cluster.start()
            cluster_options[name]['endpoints'] = ', '.join(cluster.endpoints)
        for server in servers:
            server.start()
        fleet.start()
        yield fleet, nodes, pool
    finally:
        fleet.stop()
        for server in servers:
            server.stop()
        for cluster in nodes.values():
            cluster.stop()


@contextlib.contextmanager
def backend_lab(workdir, name, nodes=2, members=2, prefix='m', lab=None,
                **options):
    """``(started CaddyBackend, CaddyCluster, MemberPool)``; the members
    live in ``lab`` (a started MemberLab)."""
    _lab_required(lab, members)
    cluster = ls_caddy.CaddyCluster(str(workdir), name, nodes=nodes)
    pool = ls_members.MemberPool(members, prefix=prefix, lab=lab)
    try:
        cluster.start()
        pool.start()
        config = cluster_conf.ClusterConfig(
            name=name, backend='caddy', max_loadbalancers=0,
            description='', backend_class=caddy_backend.CaddyBackend,
            options=dict(BACKEND_OPTIONS, endpoints=cluster.endpoints,
                         **options))
        backend = caddy_backend.CaddyBackend(config)
        backend.start()
        try:
            yield backend, cluster, pool
        finally:
            backend.stop()
    finally:
        pool.stop()
        cluster.stop()


def backend_graph(lb_id, port, members, weights=None, listener=None,
                  **pool):
    """A normalised graph (what the agent hands a backend): one listener
    (HTTP unless ``listener`` overrides fields) and one ROUND_ROBIN pool
    over ``members`` (MemberServer objects), ``pool`` overriding fields.
    Object ids derive from ``lb_id``."""
    listener_id, pool_id = lb_id + '-listener', lb_id + '-pool'
    weights = weights or [1] * len(members)
    return {
        'loadbalancer_id': lb_id, 'project_id': 'proj-lab',
        'admin_state_up': True, 'vip_address': '127.0.0.1',
        'listeners': [dict({
            'listener_id': listener_id, 'loadbalancer_id': lb_id,
            'protocol': 'HTTP', 'protocol_port': port,
            'admin_state_up': True, 'default_pool_id': pool_id,
            'connection_limit': -1, 'l7policies': [],
            'default_tls_container_data': None, 'sni_container_data': [],
            'insert_headers': {}, 'allowed_cidrs': None},
            **(listener or {}))],
        'pools': [dict({
            'pool_id': pool_id, 'loadbalancer_id': lb_id,
            'protocol': 'HTTP', 'lb_algorithm': 'ROUND_ROBIN',
            'admin_state_up': True, 'session_persistence': None,
            'healthmonitor': None,
            'members': [{'member_id': '%s-m%d' % (lb_id, i),
                         'pool_id': pool_id, 'address': m.address,
                         'protocol_port': m.port, 'weight': weight,
                         'admin_state_up': True, 'backup': False}
                        for i, (m, weight) in enumerate(
                            zip(members, weights))]}, **pool)]}


def http_listener(port, members, name='web', monitor=None, **pool):
    """One HTTP listener (full-graph create body) with a ROUND_ROBIN pool
    over ``members`` (MemberServer objects) and an optional monitor."""
    default_pool = dict({
        'name': name + '-pool', 'protocol': 'HTTP',
        'lb_algorithm': 'ROUND_ROBIN',
        'members': [{'address': m.address, 'protocol_port': m.port}
                    for m in members]}, **pool)
    if monitor:
        default_pool['healthmonitor'] = dict(
            {'type': 'HTTP', 'delay': 1, 'timeout': 1, 'max_retries': 1,
             'url_path': '/health'}, **monitor)
    return {'name': name, 'protocol': 'HTTP', 'protocol_port': port,
            'default_pool': default_pool}


def admin_get(node, path):
    """GET of a node's admin API (its unix socket), parsed (None for an
    absent key)."""
    return ls_caddy.admin_get(node.admin_url, path)


def servers_on(node):
    """``{name: server}`` a Caddy node runs."""
    return admin_get(node, '/config/apps/http/servers') or {}


def served_certificate(port, server_name):
    """The leaf certificate a TLS handshake with ``server_name`` gets."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname=server_name) as conn:
            return x509.load_der_x509_certificate(
                conn.getpeercert(binary_form=True))
