"""Tenant attacks through the real Octavia API on real Caddy nodes.

One shared cluster of two Caddy nodes serves two projects, each load
balancer on a VIP of its own from a loopback VIP pool (all of 127.0.0.0/8
is local on Linux, so the nodes bind exactly the VIP Octavia shows). The
victim's load balancer listens on port 80; every test is one attack by
another project, with its defined outcome, and ends by checking that the
victim still serves real HTTP from its own members.
"""

import random
import urllib.error
import urllib.request

import pytest
from openstack import exceptions as sdk_exc

from tests.functional import caddy_lab as lab
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import ACTIVE, wait_lb

MANAGEMENT = '10.255.0.0/16'     # configured only: no traffic goes there
OTHER_SUBNET = '99999999-2222-3333-4444-555555555555'   # no pool: Octavia's


def pool_conf():
    """A [vip_pool] on a /24 of 127.0.0.0/8 unlikely to be used by another
    stack running at the same time (the quick start picks its own)."""
    third = random.randrange(1, 255)
    cidr = '127.%d.%d.0/24' % (random.randrange(64, 127), third)
    return cidr, (
        '[multilb]\n'
        'vip_pools = lab\n'
        'management_cidrs = %s\n'
        '[vip_pool:lab]\n'
        'network_id = 5a1b0000-0000-4000-8000-%012d\n'
        'subnet_id = %s\n'
        'cidr = %s\n'
        'quarantine = 5\n' % (MANAGEMENT, third, fleet_mod.VIP_SUBNET,
                              cidr))


@pytest.fixture(scope='module')
def shared(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('attacks', numbered=True)
    cidr, extra = pool_conf()
    options = {'shared': {'listen_address': '', 'vip_pools': 'lab'}}
    with lab.caddy_fleet(workdir, {'shared': 2}, members=4, lab=member_lab,
                         options=options, extra_conf=extra) as (
                             fleet, nodes, members):
        victim_members = members.members[:2]
        conn = fleet.connection()
        victim = conn.load_balancer.create_load_balancer(
            name='victim', project_id='proj-victim',
            vip_subnet_id=fleet_mod.VIP_SUBNET,
            listeners=[lab.http_listener(80, victim_members)])
        victim = wait_lb(conn, victim.id)
        yield {'fleet': fleet, 'conn': conn, 'nodes': nodes['shared'],
               'victim': victim, 'victim_members': victim_members,
               'attacker_members': members.members[2:], 'cidr': cidr}


def fetch(address, port=80, path='/'):
    try:
        with urllib.request.urlopen('http://%s:%d%s' % (address, port, path),
                                    timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def assert_victim_serves(shared):
    victim = shared['victim']
    answers = {fetch(victim.vip_address) for _ in range(6)}
    assert answers == {(200, 'member=%s\n' % m.name)
                       for m in shared['victim_members']}
    lb = shared['conn'].load_balancer.get_load_balancer(victim.id)
    assert lb.provisioning_status == ACTIVE
    for node in shared['nodes'].nodes:
        assert node.alive()


def attacker_lb(shared, name, **kwargs):
    conn = shared['conn']
    lb = conn.load_balancer.create_load_balancer(
        name=name, project_id='proj-attacker',
        vip_subnet_id=fleet_mod.VIP_SUBNET, **kwargs)
    return wait_lb(conn, lb.id)


def refused(call, status):
    with pytest.raises(sdk_exc.HttpException) as caught:
        call()
    assert caught.value.status_code == status, caught.value
    return str(caught.value)


def test_victim_has_its_own_vip_from_the_pool(shared):
    victim = shared['victim']
    prefix = shared['cidr'].rsplit('.', 1)[0] + '.'
    assert victim.vip_address.startswith(prefix)
    assert_victim_serves(shared)


def test_member_on_the_node_itself_is_refused(shared):
    """A member at 127.0.0.1 (where a node's admin API or any local
    service listens) or in the management network: 501, nothing added."""
    conn = shared['conn']
    lb = attacker_lb(shared, 'member-attack', listeners=[
        lab.http_listener(80, shared['attacker_members'])])
    pool_id = lb.pools[0]['id']
    before = [m.id for m in conn.load_balancer.members(pool_id)]
    for address, why in (('127.0.0.1', 'a loopback address'),
                         ('10.255.3.4', 'management network')):
        text = refused(lambda: conn.load_balancer.create_member(
            pool_id, address=address, protocol_port=2019), 501)
        assert 'member address %s is not allowed' % address in text
        assert why in text
    assert [m.id for m in conn.load_balancer.members(pool_id)] == before
    assert wait_lb(conn, lb.id).provisioning_status == ACTIVE
    assert_victim_serves(shared)


def test_health_monitor_post_stop_through_a_loopback_member(shared):
    """The node-stopping attack (HM ``POST /stop`` to the admin API) needs
    a member on the node: the whole create is refused, no LB is left."""
    conn = shared['conn']
    listener = lab.http_listener(8081, [], monitor={
        'http_method': 'POST', 'url_path': '/stop'})
    listener['default_pool']['members'] = [
        {'address': '127.0.0.1', 'protocol_port': 2019}]
    text = refused(lambda: conn.load_balancer.create_load_balancer(
        name='stop-attack', project_id='proj-attacker',
        vip_subnet_id=fleet_mod.VIP_SUBNET, listeners=[listener]), 501)
    assert 'member address 127.0.0.1 is not allowed' in text
    assert not list(conn.load_balancer.load_balancers(name='stop-attack'))
    assert_victim_serves(shared)


def test_an_option_caddy_lacks_is_refused_in_a_whole_graph_create(shared):
    """As when the listener is created on its own: 501 naming the cluster
    and what it supports, no load balancer left (it used to be accepted,
    and the listener went to ERROR when the node refused it)."""
    conn = shared['conn']
    listener = lab.http_listener(8082, shared['attacker_members'])
    listener['connection_limit'] = 100
    text = refused(lambda: conn.load_balancer.create_load_balancer(
        name='capped', project_id='proj-attacker',
        vip_subnet_id=fleet_mod.VIP_SUBNET, listeners=[listener]), 501)
    assert ('cluster shared (backend caddy): listener connection_limit 100 '
            'is not supported') in text
    assert not list(conn.load_balancer.load_balancers(name='capped'))
    assert_victim_serves(shared)


def test_vip_on_loopback_or_management_network_is_refused(shared):
    conn = shared['conn']
    # Octavia's own VIP path (a network without a pool)
    text = refused(lambda: conn.load_balancer.create_load_balancer(
        name='vip-attack', project_id='proj-attacker',
        vip_subnet_id=OTHER_SUBNET, vip_address='127.0.0.1'), 501)
    assert 'VIP address 127.0.0.1 is not allowed: a loopback' in text
    # the pool's network: only free addresses of the pool
    text = refused(lambda: conn.load_balancer.create_load_balancer(
        name='vip-attack', project_id='proj-attacker',
        vip_subnet_id=fleet_mod.VIP_SUBNET, vip_address='10.255.0.9'), 501)
    assert 'vip_address 10.255.0.9 is not allowed' in text
    assert not list(conn.load_balancer.load_balancers(name='vip-attack'))
    assert_victim_serves(shared)


def test_second_project_cannot_take_the_victims_vip(shared):
    conn = shared['conn']
    text = refused(lambda: conn.load_balancer.create_load_balancer(
        name='squat', project_id='proj-attacker',
        vip_subnet_id=fleet_mod.VIP_SUBNET,
        vip_address=shared['victim'].vip_address,
        listeners=[lab.http_listener(80, shared['attacker_members'])]), 409)
    assert 'The VIP IP address is already in use' in text
    assert not list(conn.load_balancer.load_balancers(name='squat'))
    assert_victim_serves(shared)


def test_two_projects_share_port_80_on_one_cluster(shared):
    attacker = attacker_lb(shared, 'neighbour', listeners=[
        lab.http_listener(80, shared['attacker_members'])])
    assert attacker.vip_address != shared['victim'].vip_address
    answers = {fetch(attacker.vip_address) for _ in range(6)}
    assert answers == {(200, 'member=%s\n' % m.name)
                       for m in shared['attacker_members']}
    assert_victim_serves(shared)
    conn = shared['conn']
    conn.load_balancer.delete_load_balancer(attacker, cascade=True)
    fleet_mod.wait_for(lambda: not list(conn.load_balancer.load_balancers(
        name='neighbour')), what='neighbour deleted')
    with pytest.raises(OSError):
        fetch(attacker.vip_address)
    assert_victim_serves(shared)
