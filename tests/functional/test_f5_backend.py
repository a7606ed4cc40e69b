"""The f5 backend end to end: the real Octavia API and driver agent,
multilb, two F5 clusters on AS3 device EMULATORS
(tools/localstack/as3_device.py: no BIG-IP can run here; the emulator
validates every declaration against F5's published AS3 schema and holds
AS3's device-wide lock) and one cluster of a real Caddy node: a mixed
fleet, placement by flavor.

``MULTILB_F5_SLOW`` (seconds per declaration of the slow-device test,
default 4; the issue's figure is 30) makes that test as slow as a loaded
device.
"""

import json
import os
import time

import pytest

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import ACTIVE, gone, wait_lb
from tools.localstack import as3_device
from tools.localstack import caddy as ls_caddy

PASSWORD = 'emulated-bigip-password'
NETWORK = '5b7c2a9e-3d4f-4e1a-8b6c-0f9e8d7c6b5a'
SLOW = float(os.environ.get('MULTILB_F5_SLOW', '4'))
F5_OPTIONS = {'backend': 'f5', 'username': 'admin', 'password': PASSWORD,
              'task_poll_interval': 0.1, 'busy_wait': 0.2,
              'busy_wait_max': 2, 'divergence_check_interval': 1,
              'probe_timeout': 2}


@pytest.fixture(scope='module')
def mixed(tmp_path_factory):
    """``(fleet, {'bigip-a': device, 'bigip-b': device}, caddy cluster,
    {flavor name: flavor id})``."""
    workdir = tmp_path_factory.mktemp('f5fleet', numbered=True)
    devices = {name: as3_device.AS3Device(users={'admin': PASSWORD})
               for name in ('bigip-a', 'bigip-b')}
    caddy = ls_caddy.CaddyCluster(str(workdir), 'web', nodes=1)
    fleet = None
    try:
        for device in devices.values():
            device.start()
        caddy.start()
        options = {name: dict(F5_OPTIONS, endpoints=device.url,
                              tags='f5, ' + name)
                   for name, device in devices.items()}
        options['web'] = {'backend': 'caddy', 'tags': 'caddy',
                          'listen_address': '127.0.0.1',
                          'endpoints': ', '.join(caddy.endpoints)}
        fleet = fleet_mod.Fleet(
            workdir, {'bigip-a': 50, 'bigip-b': 50, 'web': 20},
            cluster_options=options,
            extra_conf='[multilb]\nmember_health_interval = 1\n'
                       'statistics_interval = 1\n').start()
        conn = fleet.connection()
        flavors = {}
        for name, data in (('f5', {'backend': 'f5'}),
                           ('slow-f5', {'clusters': ['bigip-b']}),
                           ('caddy', {'backend': 'caddy'})):
            profile = conn.load_balancer.create_flavor_profile(
                name='fp-' + name, provider_name='multilb',
                flavor_data=json.dumps(data))
            flavors[name] = conn.load_balancer.create_flavor(
                name=name, flavor_profile_id=profile.id, enabled=True).id
        yield fleet, devices, caddy, flavors
    finally:
        if fleet is not None:
            fleet.stop()
        caddy.stop()
        for device in devices.values():
            device.stop()


def full_graph(port=80, members=('10.20.0.11', '10.20.0.12')):
    return [{
        'name': 'web', 'protocol': 'HTTP', 'protocol_port': port,
        'default_pool': {
            'name': 'web-pool', 'protocol': 'HTTP',
            'lb_algorithm': 'LEAST_CONNECTIONS',
            'session_persistence': {'type': 'HTTP_COOKIE'},
            'members': [{'address': a, 'protocol_port': 8080, 'weight': w}
                        for a, w in zip(members, (1, 200))],
            'healthmonitor': {'type': 'HTTP', 'delay': 5, 'timeout': 3,
                              'max_retries': 2, 'url_path': '/health',
                              'expected_codes': '200-204'}},
        'l7policies': [{'name': 'no-admin', 'action': 'REJECT',
                        'rules': [{'type': 'PATH',
                                   'compare_type': 'STARTS_WITH',
                                   'value': '/admin'}]}]}]


def create(conn, flavor, project='proj-f5', **kwargs):
    """A load balancer on VIP network :data:`NETWORK` (Octavia's no-op
    network driver would give each a network of its own)."""
    return conn.load_balancer.create_load_balancer(
        name='f5-lb', project_id=project, flavor_id=flavor,
        vip_network_id=NETWORK, **kwargs)


def holder(devices, lb_id):
    """``(cluster, tenant)`` of the device holding ``lb_id``, or None."""
    for name, device in devices.items():
        with device.lock:
            for tenant, body in device.tenants.items():
                if 'lb_' + lb_id in body:
                    return name, tenant
    return None


def test_full_graph_goes_active_on_f5_and_cascade_delete_removes_tenant(
        mixed):
    fleet, devices, _caddy, flavors = mixed
    conn = fleet.connection()
    lbc = conn.load_balancer
    lb = wait_lb(conn, create(conn, flavors['f5'], project='proj-full',
                              listeners=full_graph()).id)
    assert lb.provisioning_status == ACTIVE
    cluster, tenant = holder(devices, lb.id)
    assert cluster in devices and tenant.startswith('mlb_proj-full_')
    app = devices[cluster].tenants[tenant]['lb_' + lb.id]
    assert {v['class'] for v in app.values() if isinstance(v, dict)} >= {
        'Service_HTTP', 'Pool', 'Monitor', 'Endpoint_Policy'}
    # the emulator reports monitored members up: health reaches Octavia
    pool = lbc.get_pool(lb.pools[0]['id'])
    fleet_mod.wait_for(
        lambda: {m.operating_status for m in lbc.members(pool.id)} ==
        {'ONLINE'}, timeout=30, what='members ONLINE')

    # the device counts bits: Octavia gets bytes, added to its totals
    listener = lb.listeners[0]['id']
    devices[cluster].set_stats(
        '/%s/lb_%s/vs_%s' % (tenant, lb.id, listener), bits_in=8000,
        bits_out=24000, tot_conns=4, cur_conns=2)
    stats = fleet_mod.wait_for(
        lambda: (lambda s: s if s.bytes_in else None)(
            lbc.get_listener_statistics(listener)),
        timeout=30, what='listener statistics')
    assert (stats.bytes_in, stats.bytes_out, stats.total_connections) == (
        1000, 3000, 4)

    lbc.delete_load_balancer(lb, cascade=True)
    fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                       what='LB gone')
    assert tenant not in devices[cluster].tenants
    assert all(d.counters['delete_all'] == 0 for d in devices.values())


def test_two_projects_are_two_tenants_and_flavor_f5_places_on_f5_only(
        mixed):
    fleet, devices, caddy, flavors = mixed
    conn = fleet.connection()
    lbs = [create(conn, flavors['f5'], project=p) for p in
           ('proj-one', 'proj-one', 'proj-two')]
    on_caddy = create(conn, flavors['caddy'], project='proj-one',
                      listeners=[{'protocol': 'HTTP',
                                  'protocol_port': 18080}])
    for lb in lbs + [on_caddy]:
        wait_lb(conn, lb.id)
    where = [holder(devices, lb.id) for lb in lbs]
    assert all(w and w[0] in devices for w in where)
    assert where[0][1].startswith('mlb_proj-one_')
    assert where[2][1].startswith('mlb_proj-two_')
    assert holder(devices, on_caddy.id) is None
    servers = ls_caddy.admin_get(caddy.nodes[0].admin_url,
                                 '/config/apps/http/servers') or {}
    assert any(name.startswith(on_caddy.id) for name in servers)
    for lb in lbs + [on_caddy]:
        conn.load_balancer.delete_load_balancer(lb, cascade=True)


def test_slow_locked_device_coalesces_and_nothing_errors(mixed):
    """bigip-b takes SLOW seconds per declaration while someone else
    holds its lock first: eight load balancers of two projects wait and
    coalesce; a caddy load balancer created meanwhile is not held up."""
    fleet, devices, _caddy, flavors = mixed
    conn = fleet.connection()
    lbc = conn.load_balancer
    device = devices['bigip-b']
    before = dict(device.counters)
    device.delay = SLOW
    # another declarer (the operator's own tool) takes the device lock
    device.submit(as3_device.ops.Op(['Operator'], lambda st: (
        200, [], {})), asynchronous=True)
    started = time.monotonic()
    lbs = [create(conn, flavors['slow-f5'], project='proj-slow-%d' % (n % 2),
                  listeners=[{'protocol': 'TCP', 'protocol_port': 9000 + n}])
           for n in range(8)]
    quick = create(conn, flavors['caddy'], project='proj-quick',
                   listeners=[{'protocol': 'HTTP', 'protocol_port': 18081}])
    wait_lb(conn, quick.id)
    quick_done = time.monotonic() - started
    done = {}
    for lb in lbs:
        done[lb.id] = wait_lb(conn, lb.id, wait=SLOW * 12 + 60)
        assert done[lb.id].provisioning_status == ACTIVE
    all_done = time.monotonic() - started
    device.delay = 0
    sent = device.counters['declarations_processed'] - \
        before['declarations_processed']
    print('[f5 slow device] %.0f s per declaration, lock held first: 8 LBs '
          'of 2 tenants ACTIVE after %.1f s in %d declaration(s), %d '
          'refused attempt(s) while locked; caddy LB ACTIVE after %.1f s'
          % (SLOW, all_done, sent, device.counters['concurrent_attempts'] -
             before['concurrent_attempts'], quick_done))
    assert sent <= 5            # 8 LBs, 2 tenants: coalesced (+ the lock)
    assert quick_done < all_done
    assert lbc.get_load_balancer(quick.id).provisioning_status == ACTIVE
    for lb in lbs + [quick]:
        lbc.delete_load_balancer(lb, cascade=True)
    for lb in lbs:
        fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                           timeout=SLOW * 12 + 60, what='slow LB gone')


def test_rejected_declaration_errors_that_lb_only(mixed):
    fleet, devices, _caddy, flavors = mixed
    conn = fleet.connection()
    lbc = conn.load_balancer
    device = devices['bigip-a']
    keep = wait_lb(conn, create(conn, flavors['f5'], project='proj-rej',
                                listeners=full_graph()).id)
    # pin the next one to the same cluster as keep
    cluster = holder(devices, keep.id)[0]
    device = devices[cluster]
    profile = lbc.create_flavor_profile(
        name='fp-only-' + cluster, provider_name='multilb',
        flavor_data=json.dumps({'clusters': [cluster]}))
    pinned = lbc.create_flavor(name='only-' + cluster,
                               flavor_profile_id=profile.id, enabled=True)
    marker = '/mlb_proj-rej/lb_x/vs_y/virtualPort: should be <= 65535'
    device.fail_next(422, marker)
    bad = create(conn, pinned.id, project='proj-rej',
                 listeners=[{'protocol': 'HTTP', 'protocol_port': 81}])
    bad = wait_lb(conn, bad.id, status='ERROR')
    assert bad.provisioning_status == 'ERROR'
    assert marker in fleet.agent_log()
    assert lbc.get_load_balancer(keep.id).provisioning_status == ACTIVE
    assert holder(devices, keep.id)[0] == cluster
    assert holder(devices, bad.id) is None
    for lb in (keep, bad):
        lbc.delete_load_balancer(lb, cascade=True)


def test_device_restarted_empty_gets_its_tenants_back(mixed):
    fleet, devices, _caddy, flavors = mixed
    conn = fleet.connection()
    lbc = conn.load_balancer
    lbs = [wait_lb(conn, create(conn, flavors['slow-f5'],
                                project='proj-back-%d' % n).id)
           for n in range(2)]
    device = devices['bigip-b']
    device.restart_empty()
    assert all(holder(devices, lb.id) is None for lb in lbs)
    fleet_mod.wait_for(lambda: all(holder(devices, lb.id) for lb in lbs),
                       timeout=60, what='tenants re-declared')
    assert {lbc.get_load_balancer(lb.id).provisioning_status
            for lb in lbs} == {ACTIVE}
    for lb in lbs:
        lbc.delete_load_balancer(lb, cascade=True)


def test_credentials_stay_out_of_the_logs(mixed):
    fleet = mixed[0]
    assert PASSWORD not in fleet.agent_log()


def test_orphan_application_is_removed_and_others_are_left_alone(mixed):
    """An application in a multilb tenant that no placed load balancer
    owns (a delete the device missed) goes at the next orphan sweep; the
    operator's own partition is never touched."""
    _fleet, devices, _caddy, _flavors = mixed
    device = devices['bigip-a']
    orphan = '0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f'
    tenant = 'mlb_proj-orphan_%s' % NETWORK
    with device.lock:      # as if declared earlier, then missed
        device.set_tenant(tenant, {'class': 'Tenant', 'lb_' + orphan: {
            'class': 'Application'}})
        device.set_tenant('Operator', {'class': 'Tenant', 'lb_mine': {
            'class': 'Application'}})
    assert tenant in device.tenants
    fleet_mod.wait_for(lambda: tenant not in device.tenants, timeout=60,
                       what='orphan tenant removed')
    assert 'Operator' in device.tenants
    assert device.counters['delete_all'] == 0
