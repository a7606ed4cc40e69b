"""Tenant attacks at the API: hostile addresses, VIP squatting, pool VIPs.

Each test is an attack a tenant could try through Octavia's API and the
answer the driver must give: an octavia-lib error naming the field (HTTP
501 or 409) with nothing recorded, or a VIP of the tenant's own.
"""

import uuid

import pytest
from octavia_lib.api.drivers import data_models as dm
from octavia_lib.api.drivers import exceptions as lib_exc

from tests.unit import fixtures as fx
from tests.unit.fixtures import LB, POOL_WEB

NODE = '192.0.2.250'
CADDY = {'backend': 'caddy', 'endpoints': 'http://%s:2019' % NODE}
# a second cluster: other nodes (an appliance belongs to one cluster)
CADDY_2 = {'backend': 'caddy', 'endpoints': 'http://192.0.2.251:2019'}
POOL_CONF = """
[vip_pool:public]
network_id = net-pool
subnet_id = subnet-pool
cidr = 127.1.0.0/30
quarantine = 600
"""


def nothing_recorded(rt, lb_id=LB):
    return rt.state.get_lb(lb_id) is None and not any(
        rt.state.pending(c) for c in rt.clusters.clusters)


def bare(lb_id, vip='203.0.113.5', project='proj-1', listeners=(), **kw):
    fields = dict(loadbalancer_id=lb_id, project_id=project, name=lb_id,
                  admin_state_up=True, flavor={}, availability_zone={},
                  vip_address=vip, vip_network_id='net-1',
                  vip_subnet_id='subnet-1', additional_vips=[],
                  listeners=list(listeners), pools=[])
    fields.update(kw)
    return dm.LoadBalancer(**fields)


def listener(lb_id, port, listener_id=None):
    return fx.listener(listener_id or str(uuid.uuid4()), port=port,
                       loadbalancer_id=lb_id)


def active(driver, rt, cluster):
    """The sample LB placed on ``cluster``, its create done."""
    driver.loadbalancer_create(fx.create_lb())
    rt.state.complete(LB, cluster, rt.state.pending(cluster)[LB],
                      index={POOL_WEB: 'pool', 'member-1': 'member'})


# -- hostile member and VIP addresses ------------------------------------


@pytest.mark.parametrize('address,why', [
    ('127.0.0.1', 'loopback'), ('::1', 'loopback'),
    ('169.254.169.254', 'link-local'), ('::ffff:127.0.0.1', 'IPv4-mapped'),
    (NODE, 'appliance management address'),
    ('10.20.0.7', 'management network (10.20.0.0/16)')])
def test_member_create_refuses_admin_plane_addresses(make, address, why):
    driver, rt = make({'c1': CADDY},
                      options={'management_cidrs': '10.20.0.0/16'})
    active(driver, rt, 'c1')
    with pytest.raises(lib_exc.UnsupportedOptionError) as caught:
        driver.member_create(fx.member('m-evil', POOL_WEB, address,
                                       protocol_port=2019))
    text = caught.value.user_fault_string
    assert text.startswith('member address %s is not allowed: ' % address)
    assert why in text
    assert rt.state.pending('c1') == {}


def test_monitor_address_and_batch_refused(make):
    driver, rt = make()
    active(driver, rt, 'alpha')
    old = fx.member('member-1', POOL_WEB, '192.0.2.10')
    new = dm.Member(member_id='member-1', pool_id=POOL_WEB,
                    monitor_address='127.0.0.1')
    with pytest.raises(lib_exc.UnsupportedOptionError) as caught:
        driver.member_update(old, new)
    assert 'member monitor_address 127.0.0.1' in (
        caught.value.user_fault_string)
    with pytest.raises(lib_exc.UnsupportedOptionError):
        driver.member_batch_update(POOL_WEB, [
            fx.member('member-1', POOL_WEB, '192.0.2.10'),
            fx.member('m-new', POOL_WEB, 'fe80::1')])
    assert rt.state.pending('alpha') == {}


def test_full_graph_with_loopback_member_places_nothing(make):
    driver, rt = make()
    lb = fx.create_lb()
    lb.pools[0].members[0].address = '127.0.0.1'
    with pytest.raises(lib_exc.UnsupportedOptionError) as caught:
        driver.loadbalancer_create(lb)
    assert 'member address 127.0.0.1 is not allowed: a loopback' in (
        caught.value.user_fault_string)
    assert nothing_recorded(rt)
    assert rt.state.cluster_counts() == {}


def test_requested_vip_on_the_metadata_address_is_refused(make):
    driver, rt = make()
    with pytest.raises(lib_exc.UnsupportedOptionError) as caught:
        driver.loadbalancer_create(bare(LB, vip='169.254.169.254'))
    assert 'VIP address 169.254.169.254' in caught.value.user_fault_string
    assert nothing_recorded(rt)


def test_member_networks_steer_placement_and_refuse_the_rest(make):
    driver, rt = make({'narrow': {'member_networks': '198.18.0.0/24'},
                       'wide': {}})
    lb = fx.create_lb()          # members in 192.0.2.0/24
    driver.loadbalancer_create(lb)
    assert rt.state.get_lb(LB)['cluster'] == 'wide'
    driver2, rt2 = make({'narrow': {'member_networks': '198.18.0.0/24'}})
    with pytest.raises(lib_exc.UnsupportedOptionError) as caught:
        driver2.loadbalancer_create(fx.create_lb(loadbalancer_id='lb-2'))
    assert 'no appliance cluster reaches every member' in (
        caught.value.user_fault_string)


# -- VIP:port reservations -----------------------------------------------


def test_second_project_cannot_take_a_vip_port(make):
    driver, rt = make({'c1': CADDY})
    driver.loadbalancer_create(bare('lb-a', listeners=[
        listener('lb-a', 80)]))
    with pytest.raises(lib_exc.Conflict) as caught:
        driver.loadbalancer_create(bare('lb-b', project='proj-2',
                                        listeners=[listener('lb-b', 80)]))
    assert caught.value.user_fault_string == (
        '203.0.113.5 port 80 is already used by another listener')
    assert rt.state.get_lb('lb-b') is None
    assert rt.state.cluster_counts()['c1'][0] == 1
    # another port of the same address is free; a listener create on the
    # taken port is refused, nothing recorded
    driver.loadbalancer_create(bare('lb-b', project='proj-2',
                                    listeners=[listener('lb-b', 81)]))
    pending = rt.state.pending('c1')
    with pytest.raises(lib_exc.Conflict):
        driver.listener_create(listener('lb-b', 80))
    assert rt.state.pending('c1') == pending


def test_released_load_balancer_frees_its_ports(make):
    driver, rt = make({'c1': CADDY})
    driver.loadbalancer_create(bare('lb-a', listeners=[
        listener('lb-a', 80)]))
    rt.state.complete('lb-a', 'c1', rt.state.pending('c1')['lb-a'],
                      release=True)
    driver.loadbalancer_create(bare('lb-b', listeners=[
        listener('lb-b', 80)]))
    assert rt.state.get_lb('lb-b')['cluster'] == 'c1'


def test_routing_domains_and_binding_free_backends(make):
    driver, rt = make({'c1': CADDY, 'c2': dict(CADDY_2, routing_domain='x'),
                       'f': {'backend': 'fake'}})
    for lb_id, cluster in (('lb-1', 'c1'), ('lb-2', 'c2'), ('lb-3', 'f'),
                           ('lb-4', 'f')):
        driver.loadbalancer_create(bare(
            lb_id, listeners=[listener(lb_id, 80)],
            flavor={'clusters': [cluster]}))
        assert rt.state.get_lb(lb_id)['cluster'] == cluster


def test_listener_on_the_admin_port_of_a_fixed_listen_address(make):
    driver, rt = make({'c1': dict(CADDY, listen_address=NODE)})
    with pytest.raises(lib_exc.UnsupportedOptionError) as caught:
        driver.loadbalancer_create(bare(LB, listeners=[listener(LB, 2019)]))
    assert "protocol_port 2019 is not allowed on this cluster: it is the " \
           "appliance's admin port" in caught.value.user_fault_string
    assert nothing_recorded(rt)


# -- VIP pools (create_vip_port) -----------------------------------------


def vip_request(**kw):
    found = {'vip_network_id': 'net-pool', 'vip_subnet_id': 'subnet-pool'}
    found.update(kw)
    return found


@pytest.fixture
def pooled(make):
    return make({'c1': dict(CADDY, vip_pools='public'), 'c2': CADDY_2},
                extra=POOL_CONF, options={'vip_pools': 'public'})


def test_network_without_pool_keeps_octavias_path(pooled):
    driver, _rt = pooled
    with pytest.raises(lib_exc.NotImplementedError):
        driver.create_vip_port(LB, 'p', {'vip_network_id': 'net-1'}, [])


def test_pool_vips_are_unique_and_multilbs_own(pooled):
    driver, rt = pooled
    vip_a, extra = driver.create_vip_port('lb-a', 'p1', vip_request(), [])
    vip_b, _ = driver.create_vip_port('lb-b', 'p2', vip_request(), [])
    assert extra == []
    assert {vip_a['vip_address'], vip_b['vip_address']} == {
        '127.1.0.1', '127.1.0.2'}
    assert uuid.UUID(vip_a['vip_port_id'])
    assert 'octavia_owned' not in vip_a
    assert vip_a['vip_network_id'] == 'net-pool'
    assert vip_a['vip_subnet_id'] == 'subnet-pool'
    # a retried call gets the same address; the pool is then full
    assert driver.create_vip_port('lb-a', 'p1', vip_request(), []) == (
        vip_a, [])
    with pytest.raises(lib_exc.DriverError) as caught:
        driver.create_vip_port('lb-c', 'p3', vip_request(), [])
    assert 'No VIP address is free on network net-pool' in (
        caught.value.user_fault_string)


@pytest.mark.parametrize('request_,error,text', [
    ({'vip_address': '127.1.0.9'}, lib_exc.UnsupportedOptionError,
     'vip_address 127.1.0.9 is not allowed on network net-pool'),
    ({'vip_port_id': 'p'}, lib_exc.UnsupportedOptionError,
     'vip_port_id is not supported on network net-pool'),
    ({'vip_sg_ids': ['sg']}, lib_exc.UnsupportedOptionError,
     'vip_sg_ids is not supported'),
    ({'vip_qos_policy_id': 'q'}, lib_exc.UnsupportedOptionError,
     'vip_qos_policy_id is not supported')])
def test_pool_requests_refused(pooled, request_, error, text):
    driver, rt = pooled
    with pytest.raises(error) as caught:
        driver.create_vip_port(LB, 'p', vip_request(**request_), [])
    assert text in caught.value.user_fault_string
    assert rt.vips.usage(rt.pools.pools['public'])['allocated'] == 0


def test_squatting_a_vip_is_a_conflict(pooled):
    driver, _rt = pooled
    driver.create_vip_port('lb-a', 'p1', vip_request(
        vip_address='127.1.0.2'), [])
    with pytest.raises(lib_exc.Conflict) as caught:
        driver.create_vip_port('lb-b', 'p2', vip_request(
            vip_address='127.1.0.2'), [])
    assert 'another load balancer' in caught.value.user_fault_string


def test_pool_vip_lands_on_a_pool_cluster_and_is_quarantined(pooled):
    driver, rt = pooled
    vip, _ = driver.create_vip_port('lb-a', 'p1', vip_request(), [])
    lb = bare('lb-a', vip=vip['vip_address'], vip_network_id='net-pool',
              listeners=[listener('lb-a', 80)])
    driver.loadbalancer_create(lb)
    record = rt.state.get_lb('lb-a')
    assert record['cluster'] == 'c1'            # c2 does not serve the pool
    assert record['vip']['address'] == vip['vip_address']
    rt.state.complete('lb-a', 'c1', rt.state.pending('c1')['lb-a'],
                      release=True)
    usage = rt.vips.usage(rt.pools.pools['public'])
    assert (usage['allocated'], usage['quarantined']) == (0, 1)
    with pytest.raises(lib_exc.Conflict) as caught:
        driver.create_vip_port('lb-b', 'p2', vip_request(
            vip_address=vip['vip_address']), [])
    assert 'released recently' in caught.value.user_fault_string
    other, _ = driver.create_vip_port('lb-b', 'p2', vip_request(), [])
    assert other['vip_address'] != vip['vip_address']


def test_refused_create_gives_the_pool_vip_back(pooled):
    driver, rt = pooled
    vip, _ = driver.create_vip_port('lb-a', 'p1', vip_request(), [])
    lb = bare('lb-a', vip=vip['vip_address'], vip_network_id='net-pool',
              flavor={'clusters': ['c2']})      # c2 does not serve it
    with pytest.raises(lib_exc.DriverError):
        driver.loadbalancer_create(lb)
    assert rt.vips.usage(rt.pools.pools['public'])['allocated'] == 0
    assert nothing_recorded(rt, 'lb-a')


def test_pool_address_not_handed_out_by_multilb_is_refused(pooled):
    driver, rt = pooled
    with pytest.raises(lib_exc.UnsupportedOptionError) as caught:
        driver.loadbalancer_create(bare(LB, vip='127.1.0.1'))
    assert 'belongs to the address pool of network net-pool' in (
        caught.value.user_fault_string)
    assert nothing_recorded(rt)


def test_allocation_of_a_create_that_never_placed_is_taken_back(pooled):
    driver, rt = pooled
    driver.create_vip_port('lb-a', 'p1', vip_request(), [])
    driver.create_vip_port('lb-b', 'p1', vip_request(), [])
    allocator = rt.vips
    allocator.stale_after = 0.0
    got = allocator.allocate(rt.pools.pools['public'], 'lb-c', 'p3',
                             now=2e10)
    assert got['address'] == '127.1.0.1'


def test_broken_pools_are_named_and_refused(make):
    extra = POOL_CONF + """
[vip_pool:overlap]
network_id = net-2
cidr = 127.1.0.0/24
[vip_pool:nocidr]
network_id = net-3
"""
    driver, rt = make(extra=extra,
                      options={'vip_pools': 'public, overlap, nocidr'})
    assert set(rt.pools.pools) == {'public'}
    assert 'overlaps pool public' in rt.pools.errors['overlap']
    assert rt.pools.errors['nocidr'] == '[vip_pool:nocidr] cidr: missing'
    with pytest.raises(lib_exc.DriverError) as caught:
        driver.create_vip_port(LB, 'p', {'vip_network_id': 'net-2'}, [])
    assert 'cannot be handed out right now' in (
        caught.value.user_fault_string)


# -- the agent: reservations follow Octavia, addresses checked again ------


@pytest.fixture
def binding_env(env, monkeypatch):
    """The worker env on a fake cluster that binds addresses like caddy."""
    monkeypatch.setattr(type(env.worker.backend), 'BINDS_ADDRESSES', True)
    env.create_active()
    return env


def bind_keys(state):
    return sorted(e.key for e in state.kv.get_prefix('bind/'))


def test_listener_delete_and_rolled_back_create_free_their_ports(
        binding_env, clock):
    env = binding_env
    assert bind_keys(env.state) == ['bind/alpha/203.0.113.5/443',
                                    'bind/alpha/203.0.113.5/80']
    # a listener create that Octavia rolls back: its port comes free
    env.driver.listener_create(listener(LB, 8080, 'l-rolled-back'))
    assert 'bind/alpha/203.0.113.5/8080' in bind_keys(env.state)
    clock.advance(61)
    env.process()
    assert 'bind/alpha/203.0.113.5/8080' not in bind_keys(env.state)
    # a listener delete frees its port once applied
    tls = env.committed()['listeners'][1]
    env.driver.listener_delete(fx.listener(tls['listener_id'], port=443,
                                           loadbalancer_id=LB))
    del env.committed()['listeners'][1]
    env.process()
    assert bind_keys(env.state) == ['bind/alpha/203.0.113.5/80']
    # and the whole LB's at delete
    env.driver.loadbalancer_delete(fx.get_lb(), cascade=True)
    env.octavia.lbs.pop(LB)
    env.process()
    assert bind_keys(env.state) == []


def test_agent_refuses_a_hostile_graph_the_api_never_saw(env):
    """Defence in depth: a graph with a loopback member (an upgrade from a
    release without the API guard, a bypassed API) never reaches the
    appliance; its objects end in ERROR."""
    env.create_active()
    env.driver.member_update(fx.member('member-1', POOL_WEB, '192.0.2.10'),
                             dm.Member(member_id='member-1', weight=3))
    member = env.committed()['pools'][0]['members'][0]
    member['weight'], member['address'] = 3, '127.0.0.1'
    env.process()
    assert env.octavia.provisioning()[('members', 'member-1')] == 'ERROR'
    applied = env.appliance()
    assert '127.0.0.1' not in str(applied)
