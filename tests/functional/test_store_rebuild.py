"""``multilb-manage store rebuild`` against a real fleet: Octavia API and
driver agent, the etcd store, and one cluster of a real Caddy node (whose
listing the command reads over its admin API, from another process than
the agent's).

The store loses every key of one ACTIVE load balancer; the command,
run as an operator would on the controller (the driver agent's sockets
from the Octavia configuration), records it again; ``lb show`` shows it
on its cluster and a later change through Octavia goes ACTIVE.
"""

import json

import pytest

from multilb import state as state_mod
from multilb import store
from tests.functional import caddy_lab as lab
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import gone, manage_json, wait_lb
from tests.functional.test_manage import manage
from tools.localstack import ports


@pytest.fixture(scope='module')
def rebuild_fleet(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('rebuild', numbered=True)
    with lab.caddy_fleet(workdir, {'rb': 1}) as (fleet, _nodes, _members):
        yield fleet


def forget(kv, lb_id, cluster, project):
    """Lose every key of ``lb_id``, its counters going back down."""
    state = state_mod.State(kv)
    record = state.get_lb(lb_id)
    keys = ['lb/' + lb_id, 'placement/%s/%s' % (cluster, lb_id),
            'sent/' + lb_id, 'stats/' + lb_id]
    keys += ['idx/' + oid for oid in record['indexed']]
    keys += sorted(record.get('binds') or {})
    puts = {}
    for key, less in (('cluster/%s/count' % cluster, 1),
                      ('cluster/%s/listeners' % cluster,
                       record['listeners']),
                      ('project/%s/%s' % (project, cluster), 1)):
        entry = kv.get(key)
        puts[key] = str(int(entry.value) - less)
    assert kv.commit(puts=puts, deletes=keys)
    return record


def test_a_lost_lb_is_rebuilt_and_stays_manageable(rebuild_fleet):
    fleet = rebuild_fleet
    conn = fleet.connection()
    lbc = conn.load_balancer
    port = ports.free_port()
    lb = lbc.create_load_balancer(
        name='rebuilt', project_id='proj-rb',
        vip_subnet_id=fleet_mod.VIP_SUBNET,
        listeners=[{'name': 'web', 'protocol': 'HTTP',
                    'protocol_port': port}])
    lb = wait_lb(conn, lb.id)
    try:
        before = manage_json(fleet, 'lb', 'show', lb.id)
        placed = manage_json(fleet, 'cluster', 'show', 'rb')['placed']
        kv = store.get_kv_store(fleet.etcd.store_url + '?prefix=/multilb/')
        record = forget(kv, lb.id, 'rb', 'proj-rb')
        done = manage(fleet, 'lb', 'show', lb.id)
        assert done.returncode == 2

        dry = manage(fleet, 'store', 'rebuild', '--dry-run', '--format',
                     'json')
        assert (dry.returncode, dry.stderr) == (0, ''), dry.stderr
        rows = {r['id']: r for r in json.loads(dry.stdout)['loadbalancers']}
        assert rows[lb.id]['outcome'] == 'would-recover'
        assert manage(fleet, 'lb', 'show', lb.id).returncode == 2

        done = manage(fleet, 'store', 'rebuild', '--format', 'json')
        assert (done.returncode, done.stderr) == (0, ''), done.stderr
        data = json.loads(done.stdout)
        assert data['clusters'] == [{'name': 'rb', 'listed': 1,
                                     'error': None}]
        rows = {r['id']: r for r in data['loadbalancers']}
        assert (rows[lb.id]['outcome'], rows[lb.id]['cluster']) == (
            'recovered', 'rb')

        after = manage_json(fleet, 'lb', 'show', lb.id)
        for key in ('cluster', 'project_id', 'pools', 'bound', 'vip'):
            assert after[key] == before[key], key
        assert manage_json(fleet, 'cluster', 'show', 'rb')['placed'] == \
            placed
        rebuilt = state_mod.State(kv).get_lb(lb.id)
        for key in ('indexed', 'listeners', 'locks', 'binds', 'applied'):
            assert rebuilt[key] == record[key], key

        # a later change through Octavia goes ACTIVE
        listener_id = lb.listeners[0]['id']
        pool = lbc.create_pool(listener_id=listener_id, protocol='HTTP',
                               lb_algorithm='ROUND_ROBIN', name='later')
        assert wait_lb(conn, lb.id).provisioning_status == 'ACTIVE'
        assert lbc.get_pool(pool.id).provisioning_status == 'ACTIVE'
        assert pool.id in manage_json(fleet, 'lb', 'show', lb.id)['pools']
    finally:
        lbc.delete_load_balancer(lb.id, cascade=True)
    fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                       what='load balancer %s deleted' % lb.id)
    assert manage_json(fleet, 'cluster', 'show', 'rb')['placed'] == 0
