"""The provider contract end to end: real Octavia API + driver agent, real
etcd and MariaDB, multilb over FAKE appliance clusters, driven by openstacksdk.

Every test checks what a user of the Octavia API sees (provisioning statuses,
objects present or gone) and what the appliance ends up holding.
"""

import os
import signal
import time

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import (
    ACTIVE, FULL_GRAPH, api_put, gone, listeners_of, make_lb, pools_of, prov,
    wait_lb)


def test_full_graph_create_reaches_active_everywhere(fleet, conn):
    lbc = conn.load_balancer
    lb = make_lb(conn, 'graph', listeners=FULL_GRAPH)
    assert lb.provisioning_status == ACTIVE
    assert lb.operating_status == 'ONLINE'
    [listener] = listeners_of(conn, lb.id)
    [pool] = pools_of(conn, lb.id)
    members = list(lbc.members(pool.id))
    [policy] = [lbc.get_l7_policy(p['id']) for p in listener.l7_policies]
    rules = list(lbc.l7_rules(policy.id))
    hm = lbc.get_health_monitor(pool.health_monitor_id)
    assert listener.provisioning_status == ACTIVE
    assert pool.provisioning_status == ACTIVE
    assert [m.provisioning_status for m in members] == [ACTIVE, ACTIVE]
    assert hm.provisioning_status == ACTIVE
    # The L7 policy and rule are missing from the object Octavia passes at
    # create time; multilb must still configure and report them.
    assert policy.provisioning_status == ACTIVE
    assert [r.provisioning_status for r in rules] == [ACTIVE]
    _cluster, held = fleet.appliance(lb.id)
    assert held['listeners'][0]['l7policies'][0]['rules'][0]['value'] == \
        '/admin'
    assert sorted(m['address'] for m in held['pools'][0]['members']) == \
        ['192.0.2.10', '192.0.2.11']
    assert held['pools'][0]['healthmonitor']['url_path'] == '/healthz'


def test_child_operations_return_target_and_parents_to_active(fleet, conn):
    lbc = conn.load_balancer
    lb = make_lb(conn, 'children')

    listener = lbc.create_listener(name='l', protocol='HTTP',
                                   protocol_port=8080, load_balancer_id=lb.id)
    wait_lb(conn, lb.id)
    assert prov(lbc.get_listener, listener.id) == ACTIVE
    lbc.update_listener(listener, connection_limit=100)
    wait_lb(conn, lb.id)
    assert lbc.get_listener(listener.id).connection_limit == 100
    assert fleet.appliance(lb.id)[1]['listeners'][0][
        'connection_limit'] == 100

    pool = lbc.create_pool(name='p', protocol='HTTP',
                           lb_algorithm='ROUND_ROBIN', listener_id=listener.id)
    wait_lb(conn, lb.id)
    assert prov(lbc.get_pool, pool.id) == ACTIVE
    assert prov(lbc.get_listener, listener.id) == ACTIVE
    lbc.update_pool(pool, lb_algorithm='LEAST_CONNECTIONS')
    wait_lb(conn, lb.id)
    assert fleet.appliance(lb.id)[1]['pools'][0]['lb_algorithm'] == \
        'LEAST_CONNECTIONS'

    member = lbc.create_member(pool, address='192.0.2.20', protocol_port=80)
    wait_lb(conn, lb.id)
    assert prov(lbc.get_member, member.id, pool) == ACTIVE
    assert prov(lbc.get_pool, pool.id) == ACTIVE
    lbc.update_member(member, pool, weight=5)
    wait_lb(conn, lb.id)
    assert fleet.appliance(lb.id)[1]['pools'][0]['members'][0]['weight'] == 5

    hm = lbc.create_health_monitor(pool_id=pool.id, type='HTTP', delay=5,
                                   timeout=3, max_retries=2)
    wait_lb(conn, lb.id)
    assert prov(lbc.get_health_monitor, hm.id) == ACTIVE
    assert prov(lbc.get_pool, pool.id) == ACTIVE
    lbc.update_health_monitor(hm, delay=7)
    wait_lb(conn, lb.id)
    assert fleet.appliance(lb.id)[1]['pools'][0]['healthmonitor'][
        'delay'] == 7

    policy = lbc.create_l7_policy(listener_id=listener.id,
                                  action='REDIRECT_TO_URL',
                                  redirect_url='http://example.com/')
    wait_lb(conn, lb.id)
    assert prov(lbc.get_l7_policy, policy.id) == ACTIVE
    rule = lbc.create_l7_rule(policy, type='HOST_NAME',
                              compare_type='EQUAL_TO', value='old.example')
    wait_lb(conn, lb.id)
    assert prov(lbc.get_l7_rule, rule.id, policy) == ACTIVE
    assert prov(lbc.get_l7_policy, policy.id) == ACTIVE
    assert prov(lbc.get_listener, listener.id) == ACTIVE
    # openstacksdk's update_l7_rule cannot set ``value`` (its own argument
    # name clashes), so this one goes through the REST API directly.
    api_put(conn, fleet, 'l7policies/%s/rules/%s' % (policy.id, rule.id),
            {'rule': {'value': 'new.example'}})
    wait_lb(conn, lb.id)
    held = fleet.appliance(lb.id)[1]
    assert held['listeners'][0]['l7policies'][0]['rules'][0]['value'] == \
        'new.example'

    # Deletes, bottom-up: each target disappears, parents end ACTIVE.
    lbc.delete_l7_rule(rule, policy)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_l7_rule, rule.id, policy)
    assert prov(lbc.get_l7_policy, policy.id) == ACTIVE
    lbc.delete_l7_policy(policy)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_l7_policy, policy.id)
    lbc.delete_health_monitor(hm)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_health_monitor, hm.id)
    lbc.delete_member(member, pool)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_member, member.id, pool)
    assert prov(lbc.get_pool, pool.id) == ACTIVE
    lbc.delete_pool(pool)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_pool, pool.id)
    assert prov(lbc.get_listener, listener.id) == ACTIVE
    lbc.delete_listener(listener)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_listener, listener.id)
    assert fleet.appliance(lb.id)[1]['listeners'] == []
    assert fleet.appliance(lb.id)[1]['pools'] == []


def test_pool_delete_reports_its_members_and_monitor_deleted(fleet, conn):
    lbc = conn.load_balancer
    lb = make_lb(conn, 'pooldel', listeners=FULL_GRAPH)
    [pool] = pools_of(conn, lb.id)
    [listener] = listeners_of(conn, lb.id)
    lbc.update_listener(listener, default_pool_id=None)
    wait_lb(conn, lb.id)
    lbc.delete_pool(pool)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_pool, pool.id)
    assert gone(lbc.get_health_monitor, pool.health_monitor_id)
    assert fleet.appliance(lb.id)[1]['pools'] == []


def test_member_batch_update_removes_dropped_members(fleet, conn):
    lbc = conn.load_balancer
    lb = make_lb(conn, 'batch', listeners=FULL_GRAPH)
    [pool] = pools_of(conn, lb.id)
    before = {m.address: m.id for m in lbc.members(pool.id)}
    # Keep .10 (changing its weight), drop .11, add .12.
    api_put(conn, fleet, 'pools/%s/members' % pool.id, {'members': [
        {'address': '192.0.2.10', 'protocol_port': 8080, 'weight': 3},
        {'address': '192.0.2.12', 'protocol_port': 8080}]})
    wait_lb(conn, lb.id)
    after = {m.address: m for m in lbc.members(pool.id)}
    assert sorted(after) == ['192.0.2.10', '192.0.2.12']
    assert after['192.0.2.10'].id == before['192.0.2.10']
    assert all(m.provisioning_status == ACTIVE for m in after.values())
    assert prov(lbc.get_pool, pool.id) == ACTIVE
    held = fleet.appliance(lb.id)[1]['pools'][0]['members']
    assert sorted((m['address'], m['weight']) for m in held) == [
        ('192.0.2.10', 3), ('192.0.2.12', 1)]


def test_cascade_delete_removes_everything(fleet, conn):
    lbc = conn.load_balancer
    lb = make_lb(conn, 'cascade', listeners=FULL_GRAPH)
    [listener] = listeners_of(conn, lb.id)
    [pool] = pools_of(conn, lb.id)
    [policy] = [lbc.get_l7_policy(p['id']) for p in listener.l7_policies]
    assert fleet.appliance(lb.id) is not None
    lbc.delete_load_balancer(lb, cascade=True)
    fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                       what='LB gone')
    assert gone(lbc.get_listener, listener.id)
    assert gone(lbc.get_pool, pool.id)
    assert gone(lbc.get_l7_policy, policy.id)
    assert gone(lbc.get_health_monitor, pool.health_monitor_id)
    assert fleet.appliance(lb.id) is None


def test_backend_failure_on_child_is_error_with_parents_active(fleet, conn):
    lbc = conn.load_balancer
    lb = make_lb(conn, 'fails')
    fleet.set_faults(apply='rejected')
    listener = lbc.create_listener(name='bad', protocol='HTTP',
                                   protocol_port=81, load_balancer_id=lb.id)
    lb = wait_lb(conn, lb.id)
    assert lb.provisioning_status == ACTIVE
    assert prov(lbc.get_listener, listener.id) == 'ERROR'
    # The user can clean up once the appliance behaves again.
    fleet.set_faults()
    lbc.delete_listener(listener)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_listener, listener.id)


def test_backend_failure_on_create_is_error_and_deletable(fleet, conn):
    lbc = conn.load_balancer
    fleet.set_faults(apply='rejected')
    lb = lbc.create_load_balancer(name='bad-lb', project_id='proj-e2e',
                                  vip_subnet_id=fleet_mod.VIP_SUBNET)
    lb = wait_lb(conn, lb.id, status='ERROR')
    assert lb.operating_status == 'ERROR'
    fleet.set_faults()
    lbc.delete_load_balancer(lb)
    fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                       what='ERROR LB deleted')


def test_unavailable_cluster_is_retried_not_failed(fleet, conn):
    lbc = conn.load_balancer
    lb = make_lb(conn, 'flaky')
    fleet.set_faults(apply='unavailable')
    listener = lbc.create_listener(name='later', protocol='HTTP',
                                   protocol_port=82, load_balancer_id=lb.id)
    time.sleep(2)
    assert lbc.get_load_balancer(lb.id).provisioning_status == \
        'PENDING_UPDATE'
    fleet.set_faults()
    wait_lb(conn, lb.id)
    assert prov(lbc.get_listener, listener.id) == ACTIVE


def test_a_member_the_cluster_rejects_never_poisons_its_lb(fleet, conn):
    """The cluster refuses one member (an address it cannot route): that
    member is ERROR, later changes of the LB still go ACTIVE, deleting the
    member heals it."""
    lbc = conn.load_balancer
    lb = make_lb(conn, 'poisoned', listeners=FULL_GRAPH)
    [pool] = pools_of(conn, lb.id)
    fleet.set_faults(reject_addresses=['192.0.2.66'])
    bad = lbc.create_member(pool, address='192.0.2.66', protocol_port=8080)
    assert wait_lb(conn, lb.id).provisioning_status == ACTIVE
    assert prov(lbc.get_member, bad.id, pool.id) == 'ERROR'
    held = fleet.appliance(lb.id)[1]['pools'][0]['members']
    assert sorted(m['address'] for m in held) == ['192.0.2.10', '192.0.2.11']

    # Later changes go ACTIVE (before, each resent the refused member and
    # failed with it).
    good = lbc.create_member(pool, address='192.0.2.12', protocol_port=8080)
    wait_lb(conn, lb.id)
    assert prov(lbc.get_member, good.id, pool.id) == ACTIVE
    [listener] = listeners_of(conn, lb.id)
    lbc.update_listener(listener, connection_limit=50)
    wait_lb(conn, lb.id)
    assert prov(lbc.get_listener, listener.id) == ACTIVE
    held = fleet.appliance(lb.id)[1]
    assert held['listeners'][0]['connection_limit'] == 50
    assert sorted(m['address'] for m in held['pools'][0]['members']) == [
        '192.0.2.10', '192.0.2.11', '192.0.2.12']
    assert prov(lbc.get_member, bad.id, pool.id) == 'ERROR'

    # Deleting the refused member heals the LB: nothing is left in ERROR.
    lbc.delete_member(bad, pool)
    wait_lb(conn, lb.id)
    assert gone(lbc.get_member, bad.id, pool.id)
    assert prov(lbc.get_pool, pool.id) == ACTIVE
    assert [m.provisioning_status for m in lbc.members(pool.id)] == [
        ACTIVE] * 3
    lbc.delete_load_balancer(lb.id, cascade=True)


def test_agent_killed_mid_create_finishes_after_restart(fleet, conn):
    lbc = conn.load_balancer
    fleet.set_faults(latency=3.0)
    lb = lbc.create_load_balancer(name='survivor', project_id='proj-e2e',
                                  vip_subnet_id=fleet_mod.VIP_SUBNET,
                                  listeners=FULL_GRAPH)
    # The agent picks the work up within a poll and a get (~0.5 s), then
    # spends 3 s in the appliance call: kill it in the middle of that call.
    time.sleep(1.5)
    pids = fleet.octavia.provider_agent_pids('multilb')
    assert pids, 'no multilb provider agent process found'
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    fleet.set_faults()
    assert lbc.get_load_balancer(lb.id).provisioning_status == \
        'PENDING_CREATE'
    fleet.octavia.restart_driver_agent()
    lb = wait_lb(conn, lb.id, wait=90)
    assert lb.provisioning_status == ACTIVE
    [listener] = listeners_of(conn, lb.id)
    assert listener.provisioning_status == ACTIVE
    assert fleet.appliance(lb.id) is not None


def test_surviving_agent_takes_over_the_clusters_of_a_dead_one(fleet, conn):
    """Two provider agents (two driver agents, as on two Octavia hosts);
    the first is killed for good; the second serves every cluster."""
    octavia = fleet.octavia
    second = octavia.start_extra_driver_agent()
    try:
        [second_agent] = octavia.provider_agent_pids('multilb', second)
        for pid in octavia.provider_agent_pids('multilb'):
            os.kill(pid, signal.SIGKILL)
        # Until the dead agent's membership and locks expire (6 s here) its
        # clusters have no worker; after that every new LB must still work.
        # Least-loaded placement alternates once the counts are level, so
        # a few LBs reach every cluster.
        served = set()
        for i in range(10):
            lb = make_lb(conn, 'after-takeover-%d' % i)
            served.add(fleet.appliance(lb.id)[0])
            if served == set(fleet.clusters):
                break
        assert served == set(fleet.clusters)
        log = open(os.path.join(
            octavia.log_dir, 'octavia-driver-agent-1.log')).read()
        for cluster in fleet.clusters:
            assert 'Cluster %s is now served by agent' % cluster in log
        assert octavia.provider_agent_pids('multilb', second) == \
            [second_agent]
    finally:
        octavia.restart_driver_agent()
        second.stop(timeout=30)
        octavia.extra_driver_agents.remove(second)


def test_statuses_wait_in_the_outbox_until_octavia_takes_them(fleet, conn):
    """Octavia's status socket is unreachable: the appliance is configured,
    the status update waits in multilb's outbox, and is delivered as soon
    as the socket is back, with no restart of anything."""
    make_lb(conn, 'before-outage')  # the agent is up and talking to Octavia
    socket_path = fleet.octavia.status_socket
    os.rename(socket_path, socket_path + '.away')
    try:
        lb = conn.load_balancer.create_load_balancer(
            name='outboxed', project_id='proj-e2e',
            vip_subnet_id=fleet_mod.VIP_SUBNET)
        fleet_mod.wait_for(lambda: fleet.appliance(lb.id), timeout=30,
                           what='LB applied on the appliance')
        fleet_mod.wait_for(
            lambda: 'status update for load balancer %s not delivered' %
            lb.id in fleet.agent_log(), timeout=30, what='delivery retried')
        assert conn.load_balancer.get_load_balancer(
            lb.id).provisioning_status == 'PENDING_CREATE'
    finally:
        os.rename(socket_path + '.away', socket_path)
    assert wait_lb(conn, lb.id).provisioning_status == ACTIVE


def test_failover_rebuilds_a_failed_load_balancer(fleet, conn):
    lbc = conn.load_balancer
    fleet.set_faults(apply='rejected')
    lb = lbc.create_load_balancer(name='phoenix', project_id='proj-e2e',
                                  vip_subnet_id=fleet_mod.VIP_SUBNET,
                                  listeners=FULL_GRAPH)
    wait_lb(conn, lb.id, status='ERROR')
    [listener] = listeners_of(conn, lb.id)
    assert listener.provisioning_status == 'ERROR'
    fleet.set_faults()
    lbc.failover_load_balancer(lb.id)
    lb = wait_lb(conn, lb.id)
    assert lb.operating_status == 'ONLINE'
    [listener] = listeners_of(conn, lb.id)
    [pool] = pools_of(conn, lb.id)
    assert listener.provisioning_status == ACTIVE
    assert pool.provisioning_status == ACTIVE
    assert fleet.appliance(lb.id) is not None
