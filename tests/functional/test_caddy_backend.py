"""The caddy backend end to end: the real Octavia API and driver agent,
multilb, a cluster of two real Caddy nodes and real member HTTP servers.
"""

import json
import urllib.error
import urllib.request

import pytest

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import ACTIVE, gone, wait_lb
from tools.localstack import caddy as ls_caddy
from tools.localstack import members as ls_members
from tools.localstack import ports


@pytest.fixture(scope='module')
def caddy_fleet(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('caddyfleet', numbered=True)
    nodes = ls_caddy.CaddyCluster(str(workdir), 'web', nodes=2)
    members = ls_members.MemberPool(2, prefix='m')
    fleet = fleet_mod.Fleet(workdir, {'web': 10}, cluster_options={'web': {
        'backend': 'caddy', 'listen_address': '127.0.0.1'}})
    try:
        nodes.start()
        members.start()
        fleet.cluster_options['web']['endpoints'] = ', '.join(nodes.endpoints)
        fleet.start()
        yield fleet, nodes, members
    finally:
        fleet.stop()
        members.stop()
        nodes.stop()


def servers_on(node):
    """The servers a Caddy node runs, read from its admin API."""
    with urllib.request.urlopen(node.admin_url +
                                '/config/apps/http/servers') as response:
        return json.load(response) or {}


def fetch(port, path='/'):
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d%s' % (port, path),
                                    timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_full_graph_serves_traffic_and_delete_removes_every_trace(
        caddy_fleet):
    fleet, nodes, members = caddy_fleet
    conn = fleet.connection()
    lbc = conn.load_balancer
    port = ports.free_port()
    lb = lbc.create_load_balancer(
        name='caddy-lb', project_id='proj-caddy',
        vip_subnet_id=fleet_mod.VIP_SUBNET,
        listeners=[{
            'name': 'web', 'protocol': 'HTTP', 'protocol_port': port,
            'default_pool': {
                'name': 'web-pool', 'protocol': 'HTTP',
                'lb_algorithm': 'ROUND_ROBIN',
                'members': [{'address': '127.0.0.1',
                             'protocol_port': m.port}
                            for m in members.members],
                'healthmonitor': {'type': 'HTTP', 'delay': 1, 'timeout': 1,
                                  'max_retries': 1, 'url_path': '/health'}},
            'l7policies': [{'name': 'no-admin', 'action': 'REJECT',
                            'rules': [{'type': 'PATH',
                                       'compare_type': 'STARTS_WITH',
                                       'value': '/admin'}]}]}])
    lb = wait_lb(conn, lb.id)
    assert lb.provisioning_status == ACTIVE

    answers = [fetch(port) for _ in range(8)]
    assert {status for status, _body in answers} == {200}
    assert {body for _status, body in answers} == {
        'member=%s\n' % m.name for m in members.members}
    assert fetch(port, '/admin/secrets')[0] == 403

    for node in nodes.nodes:
        servers = servers_on(node)
        assert [name for name in servers if name.startswith(lb.id)]

    # A node that restarts empty gets the load balancer back by itself.
    nodes.nodes[0].restart(empty=True)
    assert not [n for n in servers_on(nodes.nodes[0])
                if n.startswith(lb.id)]
    fleet_mod.wait_for(lambda: [n for n in servers_on(nodes.nodes[0])
                                if n.startswith(lb.id)], timeout=30,
                       what='restarted node re-populated')
    assert lbc.get_load_balancer(lb.id).provisioning_status == ACTIVE

    lbc.delete_load_balancer(lb, cascade=True)
    fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                       what='LB gone')
    for node in nodes.nodes:
        assert not [name for name in servers_on(node)
                    if name.startswith(lb.id)]
    with pytest.raises(OSError):
        urllib.request.urlopen('http://127.0.0.1:%d/' % port, timeout=2)
