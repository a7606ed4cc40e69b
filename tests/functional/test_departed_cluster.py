"""A cluster removed from the configuration with a load balancer on it,
through the real Octavia API and driver agent (fake clusters): the tenant
can still delete the load balancer (and free the quota), every other
change is refused with a clear message, ``multilb-manage cluster list``
explains, and the other cluster is untouched.
"""

import json
import os

import pytest

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import (
    MANAGE_ATTENTION, gone, make_lb, manage_json, wait_lb)


@pytest.fixture(scope='module')
def fleet(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('departed', numbered=True)
    started = fleet_mod.Fleet(workdir, {'alpha': 10, 'beta': 10}).start()
    try:
        yield started
    finally:
        started.stop()


def _mirror(fleet, cluster, lb_id):
    path = os.path.join(fleet.workdir, 'appliance', cluster, lb_id + '.json')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _remove_cluster(fleet, name):
    """Restart Octavia's API and driver agent without cluster ``name`` (its
    section and its place in enabled_clusters), as an operator would."""
    stack = fleet.octavia
    stack.stop()
    fleet.clusters = {k: v for k, v in fleet.clusters.items() if k != name}
    conf = fleet_mod.multilb_conf(
        fleet.workdir, fleet.etcd.store_url + '?prefix=/multilb/',
        fleet.clusters, coordination_url=(
            fleet.etcd.store_url + '?timeout=5&lock_timeout=6'
            '&membership_timeout=6'))
    stack.extra_conf = conf
    stack.start()


def test_removed_clusters_lbs_can_only_be_deleted(fleet):
    conn = fleet.connection()
    lbc = conn.load_balancer
    lb = make_lb(conn, 'on-leaving', listeners=[{
        'name': 'web', 'protocol': 'HTTP', 'protocol_port': 80,
        'default_pool': {'name': 'web-pool', 'protocol': 'HTTP',
                         'lb_algorithm': 'ROUND_ROBIN',
                         'members': [{'address': '192.0.2.10',
                                      'protocol_port': 8080}]}}])
    leaving, _graph = fleet.appliance(lb.id)
    staying = ({'alpha', 'beta'} - {leaving}).pop()
    other = make_lb(conn, 'on-staying')      # least loaded first
    assert fleet.appliance(other.id)[0] == staying

    _remove_cluster(fleet, leaving)
    conn = fleet.connection()
    lbc = conn.load_balancer

    # the load balancer left on it needs attention: cluster list exits 3
    rows = {r['name']: r for r in manage_json(fleet, 'cluster', 'list',
                                              code=MANAGE_ATTENTION)}
    assert rows[leaving]['state'] == 'not-configured'
    assert rows[leaving]['attention'] == ['not-configured']
    assert rows[leaving]['placed'] == 1
    assert 'can only be deleted' in rows[leaving]['error']
    assert 'does not remove it from the appliance' in rows[leaving]['error']

    # Any change but a delete is refused, saying why; nothing changes.
    pool = lbc.get_pool(lb.pools[0]['id'])
    response = conn.session.post(
        '%s/v2/lbaas/pools/%s/members' % (fleet.octavia.api_url, pool.id),
        json={'member': {'address': '192.0.2.11', 'protocol_port': 8080}},
        headers={'X-Project-Id': 'proj-e2e'}, raise_exc=False)
    assert response.status_code == 500, response.text
    assert 'can only be deleted' in response.json()['faultstring']
    assert lbc.get_load_balancer(lb.id).provisioning_status == 'ACTIVE'
    assert len(list(lbc.members(pool))) == 1

    # The delete goes through: DELETED in Octavia, capacity released.
    lbc.delete_load_balancer(lb.id, cascade=True)
    fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                       what='LB on the removed cluster deleted')
    # multilb cannot reach the removed cluster: what it held is still
    # there, and the operator is told so
    assert _mirror(fleet, leaving, lb.id) is not None
    fleet_mod.wait_for(
        lambda: ('the cluster is no longer configured' in fleet.agent_log()
                 and lb.id in fleet.agent_log()),
        what='warning naming the LB and the cluster')
    # (the cluster that stays may be stale while the restarted agent
    # takes it over: 3 until it probes it again)
    fleet_mod.wait_for(
        lambda: leaving not in {r['name'] for r in manage_json(
            fleet, 'cluster', 'list', code=(0, MANAGE_ATTENTION))},
        what='removed cluster forgotten')
    # nothing needs attention any more: cluster list exits 0
    fleet_mod.wait_for(
        lambda: all(not r['attention'] for r in manage_json(
            fleet, 'cluster', 'list', code=(0, MANAGE_ATTENTION))),
        what='every cluster fine again')
    assert [r['name'] for r in manage_json(fleet, 'cluster', 'list')] == [
        staying]

    # The other cluster is unaffected and takes new load balancers.
    wait_lb(conn, other.id)
    lbc.update_load_balancer(other.id, description='still managed')
    assert wait_lb(conn, other.id).description == 'still managed'
    new = make_lb(conn, 'after-removal')
    assert fleet.appliance(new.id)[0] == staying
