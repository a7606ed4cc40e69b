"""The caddy backend end to end: the real Octavia API and driver agent,
multilb, a cluster of two real Caddy nodes and real member HTTP servers.
"""

import urllib.error
import urllib.request

import pytest

from tests.functional import caddy_lab as lab
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import ACTIVE, gone, wait_lb
from tools.localstack import ports


@pytest.fixture(scope='module')
def caddy_fleet(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('caddyfleet', numbered=True)
    fast = '[multilb]\nmember_health_interval = 1\nstatistics_interval = 1\n'
    with lab.caddy_fleet(workdir, {'web': 2}, members=2, lab=member_lab,
                         extra_conf=fast) as (fleet, nodes, members):
        yield fleet, nodes['web'], members


servers_on = lab.servers_on


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
        listeners=[dict(
            lab.http_listener(port, members.members, monitor={}),
            l7policies=[{'name': 'no-admin', 'action': 'REJECT',
                         'rules': [{'type': 'PATH',
                                    'compare_type': 'STARTS_WITH',
                                    'value': '/admin'}]}])])
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


def operating(lbc, lb, pool, member_ids):
    """Operating statuses Octavia's API shows, in a comparable shape."""
    return (lbc.get_load_balancer(lb.id).operating_status,
            lbc.get_pool(pool.id).operating_status,
            [lbc.get_member(mid, pool.id).operating_status
             for mid in member_ids])


def test_member_health_and_listener_statistics_reach_octavia(caddy_fleet):
    fleet, nodes, members = caddy_fleet
    conn = fleet.connection()
    lbc = conn.load_balancer
    port = ports.free_port()
    lb = lbc.create_load_balancer(
        name='observed', project_id='proj-caddy',
        vip_subnet_id=fleet_mod.VIP_SUBNET,
        listeners=[lab.http_listener(port, members.members,
                                     monitor={'max_retries_down': 1})])
    lb = wait_lb(conn, lb.id)
    listener = lbc.get_listener(lb.listeners[0]['id'])
    pool = lbc.get_pool(listener.default_pool_id)
    member_ids = [m['id'] for m in pool.members]
    by_port = {lbc.get_member(mid, pool.id).protocol_port: mid
               for mid in member_ids}
    sick = members.members[1]
    try:
        fleet_mod.wait_for(
            lambda: operating(lbc, lb, pool, member_ids) == (
                'ONLINE', 'ONLINE', ['ONLINE', 'ONLINE']),
            timeout=60, what='every member ONLINE')

        # Traffic shows in the listener's and the LB's statistics.
        members.reset_counts()
        answers = [fetch(port) for _ in range(10)]
        assert {status for status, _ in answers} == {200}
        fleet_mod.wait_for(
            lambda: lbc.get_listener_statistics(
                listener.id).total_connections >= 10,
            timeout=30, what='10 requests counted')
        stats = lbc.get_listener_statistics(listener.id)
        assert stats.bytes_out >= sum(len(body) for _, body in answers)
        assert stats.bytes_in > 0 and stats.request_errors == 0
        assert lbc.get_load_balancer_statistics(
            lb.id).total_connections == stats.total_connections

        # A member whose health check fails: ERROR, the LB DEGRADED, and
        # the healthy member takes every request.
        sick.healthy = False
        fleet_mod.wait_for(
            lambda: lbc.get_member(by_port[sick.port], pool.id)
            .operating_status == 'ERROR', timeout=60, what='member ERROR')
        assert lbc.get_pool(pool.id).operating_status == 'DEGRADED'
        assert lbc.get_listener(listener.id).operating_status == 'DEGRADED'
        assert lbc.get_load_balancer(lb.id).operating_status == 'DEGRADED'
        assert lbc.get_member(by_port[members.members[0].port],
                              pool.id).operating_status == 'ONLINE'
        assert lbc.get_load_balancer(lb.id).provisioning_status == ACTIVE
        members.reset_counts()
        assert {fetch(port)[1] for _ in range(6)} == {
            'member=%s\n' % members.members[0].name}
        assert sick.hits == 0

        sick.healthy = True
        fleet_mod.wait_for(
            lambda: operating(lbc, lb, pool, member_ids) == (
                'ONLINE', 'ONLINE', ['ONLINE', 'ONLINE']),
            timeout=60, what='member back ONLINE')

        # Totals never go down: a node restart resets Caddy's counters.
        before = lbc.get_listener_statistics(listener.id).total_connections
        nodes.nodes[0].restart(empty=False)
        for _ in range(6):
            assert fetch(port)[0] == 200
        fleet_mod.wait_for(
            lambda: lbc.get_listener_statistics(
                listener.id).total_connections >= before + 6,
            timeout=30, what='requests after a node restart counted')
    finally:
        sick.healthy = True
        lbc.delete_load_balancer(lb, cascade=True)
        fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                           what='LB gone')
