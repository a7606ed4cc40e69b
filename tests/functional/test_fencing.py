"""Fencing for real (etcd): a provider agent frozen with SIGSTOP in the
middle of a write loses its cluster to a second agent; when it resumes,
its late write lands, its completion is refused, it stops driving the
cluster, and the new owner re-applies the load balancer so the appliance
ends with the newest configuration.

Two driver agents run, as on two Octavia hosts, over the session's fleet
(fake clusters alpha and beta; lock and membership timeouts of 6 s).
"""

import json
import os
import signal
import time

import pytest

from multilb import fencing
from multilb import store
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import ACTIVE, wait_lb


def _pid(agent):
    """The process id in an agent's member id (host-pid-random)."""
    return int(agent.rsplit('-', 2)[1])


@pytest.fixture
def two_agents(fleet):
    octavia = fleet.octavia
    second = octavia.start_extra_driver_agent()
    stopped = []
    try:
        yield second, stopped
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        octavia.restart_driver_agent()
        second.stop(timeout=30)
        octavia.extra_driver_agents.remove(second)


def _settled_owner(kv, cluster, agents, quiet=3.0, timeout=60):
    """The live agent that has owned ``cluster`` for ``quiet`` seconds:
    the second agent joining the group makes the hash ring hand clusters
    over, and the test must freeze the owner after that, not during it."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        agent = (fencing.owners(kv).get(cluster) or {}).get('agent')
        if agent != last:
            last, since = agent, time.monotonic()
        elif agent and _pid(agent) in agents and (
                time.monotonic() - since >= quiet):
            return agent
        time.sleep(0.1)
    raise AssertionError('%s never settled on a live agent (last: %s)' % (
        cluster, last))


def _weight(fleet, lb_id):
    return fleet.appliance(lb_id)[1]['pools'][0]['members'][0]['weight']


def test_a_stalled_agent_is_fenced_and_its_late_write_repaired(
        fleet, conn, two_agents):
    second, stopped = two_agents
    octavia = fleet.octavia
    kv = store.get_kv_store(fleet.etcd.store_url + '?prefix=/multilb/')
    lbc = conn.load_balancer
    profile = lbc.create_flavor_profile(
        name='alpha-only', provider_name='multilb',
        flavor_data=json.dumps({'clusters': ['alpha']}))
    flavor = lbc.create_flavor(name='alpha-only', enabled=True,
                               flavor_profile_id=profile.id)
    lb = wait_lb(conn, lbc.create_load_balancer(
        name='fenced', project_id='proj-e2e', flavor_id=flavor.id,
        vip_subnet_id=fleet_mod.VIP_SUBNET, listeners=[{
            'name': 'web', 'protocol': 'HTTP', 'protocol_port': 80,
            'default_pool': {
                'name': 'p', 'protocol': 'HTTP',
                'lb_algorithm': 'ROUND_ROBIN',
                'members': [{'address': '192.0.2.10',
                             'protocol_port': 8080}]}}]).id)
    pool_id = lb.pools[0]['id']
    [member] = list(lbc.members(pool_id))
    agents = {pid for pid in octavia.provider_agent_pids('multilb') +
              octavia.provider_agent_pids('multilb', second)}
    owner = _settled_owner(kv, 'alpha', agents)

    # The owner starts writing weight 5 (4 s in the appliance call) and is
    # frozen in the middle of it.
    fleet.set_faults(latency=4.0)
    lbc.update_member(member, pool_id, weight=5)
    time.sleep(1.5)
    os.kill(_pid(owner), signal.SIGSTOP)
    stopped.append(_pid(owner))

    # The other agent takes alpha over (locks expire after 6 s), finishes
    # the update, and applies the user's next change.
    fleet_mod.wait_for(
        lambda: fencing.owners(kv)['alpha']['agent'] != owner, timeout=60,
        interval=0.5, what='alpha taken over')
    new_owner = fencing.owners(kv)['alpha']['agent']
    assert wait_lb(conn, lb.id, wait=60).provisioning_status == ACTIVE
    fleet.set_faults()
    lbc.update_member(member, pool_id, weight=9)
    assert wait_lb(conn, lb.id).provisioning_status == ACTIVE
    assert _weight(fleet, lb.id) == 9

    # The frozen agent resumes: its write of weight 5 lands, its
    # completion is refused, and the owner re-applies weight 9.
    os.kill(_pid(owner), signal.SIGCONT)
    stopped.remove(_pid(owner))
    logs = [os.path.join(octavia.log_dir, name) for name in (
        'octavia-driver-agent.log', 'octavia-driver-agent-1.log')]

    def said(text):
        return any(text in open(path).read() for path in logs)

    fleet_mod.wait_for(
        lambda: said('Cluster alpha: cluster alpha is now driven by agent '
                     '%s; this agent stops driving it at once' % new_owner),
        timeout=30, what='the stalled agent fenced')
    fleet_mod.wait_for(
        lambda: said('Load balancer %s on cluster alpha: agent %s wrote to '
                     'the cluster after losing it; re-applying it' % (
                         lb.id, owner)),
        timeout=30, what='the late write repaired')
    fleet_mod.wait_for(lambda: _weight(fleet, lb.id) == 9, timeout=30,
                       what='the appliance holds the newest graph')
    assert lbc.get_member(member.id, pool_id).weight == 9
    assert lbc.get_member(member.id, pool_id).provisioning_status == ACTIVE
    # Back in the group, the resumed agent may get alpha back from the
    # hash ring (a clean hand-over, with a new claim); work goes on.
    lbc.update_member(member, pool_id, weight=3)
    assert wait_lb(conn, lb.id).provisioning_status == ACTIVE
    fleet_mod.wait_for(lambda: _weight(fleet, lb.id) == 3, timeout=30,
                       what='a later change applied')
    lbc.delete_load_balancer(lb.id, cascade=True)
