"""Member health on a Caddy cluster where two projects use the same member
``address:port``, through the real Octavia API and driver agent.

Caddy keeps one health figure per member address on a node, written by
every pool that proxies to it (the last writer wins). Project A checks the
member with a monitor it passes, project B with one it fails (B expects a
503 the member never sends): each figure Caddy shows for the address is
one of the two, so neither member may get a verdict from it. A member of
A at an address only A uses gets its own (the monitor runs); once B's load
balancer is gone, A's shared member gets its own verdict again.
"""

import time

import pytest

from tests.functional import caddy_lab as lab
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import gone, wait_lb
from tools.localstack import ports

# Caddy refreshes its health gauge every 10 s: watch two refreshes at least
WATCH = 25


@pytest.fixture(scope='module')
def shared_fleet(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('sharedhealth', numbered=True)
    fast = '[multilb]\nmember_health_interval = 1\nstatistics_interval = 1\n'
    with lab.caddy_fleet(workdir, {'shared': 1}, members=2, lab=member_lab,
                         extra_conf=fast) as (fleet, nodes, members):
        yield fleet, members


def create(lbc, name, project, members, **monitor):
    lb = lbc.create_load_balancer(
        name=name, project_id=project, vip_subnet_id=fleet_mod.VIP_SUBNET,
        listeners=[lab.http_listener(ports.free_port(), members,
                                     monitor=dict(monitor,
                                                  max_retries_down=1))])
    return lb


def member_ids(lbc, lb):
    """``{dial: member id}`` of the load balancer's only pool."""
    pool = lbc.get_pool(lbc.get_load_balancer(lb.id).pools[0]['id'])
    found = {}
    for ref in pool.members:
        member = lbc.get_member(ref['id'], pool.id)
        found['%s:%d' % (member.address, member.protocol_port)] = (
            pool.id, member.id)
    return found


def status(lbc, pool_and_member):
    pool_id, member_id = pool_and_member
    return lbc.get_member(member_id, pool_id).operating_status


def test_a_member_address_two_projects_share_gets_neither_verdict(
        shared_fleet):
    fleet, members = shared_fleet
    conn = fleet.connection()
    lbc = conn.load_balancer
    shared, own = members.members
    lb_a = create(lbc, 'health-a', 'proj-health-a', [shared, own],
                  url_path='/health')
    lb_b = create(lbc, 'health-b', 'proj-health-b', [shared],
                  url_path='/health', expected_codes='503')
    created = [lb_a, lb_b]
    try:
        wait_lb(conn, lb_a.id)
        wait_lb(conn, lb_b.id)
        in_a, in_b = member_ids(lbc, lb_a), member_ids(lbc, lb_b)
        a_shared, a_own = in_a[shared.dial], in_a[own.dial]
        b_shared = in_b[shared.dial]
        # the monitor runs: A's member at its own address gets ONLINE
        fleet_mod.wait_for(lambda: status(lbc, a_own) == 'ONLINE',
                           timeout=60, what="A's own member ONLINE")
        before = (status(lbc, a_shared), status(lbc, b_shared))
        seen = set()
        deadline = time.monotonic() + WATCH
        while time.monotonic() < deadline:
            now = (status(lbc, a_shared), status(lbc, b_shared))
            seen.add(now)
            # A passes its checks, B fails its: an ERROR for A or an
            # ONLINE for B could only be the other project's verdict
            assert now[0] != 'ERROR' and now[1] != 'ONLINE', now
            time.sleep(0.5)
        # no verdict at all: both keep what Octavia showed
        assert seen == {before}, seen
        assert before[0] not in ('ONLINE', 'ERROR'), before
        assert before[1] not in ('ONLINE', 'ERROR'), before

        # B leaves: the address is A's alone, A's member gets its verdict
        lbc.delete_load_balancer(lb_b, cascade=True)
        fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb_b.id),
                           what='B gone')
        created.remove(lb_b)
        fleet_mod.wait_for(lambda: status(lbc, a_shared) == 'ONLINE',
                           timeout=60, what="A's shared member ONLINE")
    finally:
        for lb in created:
            lbc.delete_load_balancer(lb, cascade=True)
        for lb in created:
            fleet_mod.wait_for(lambda: gone(lbc.get_load_balancer, lb.id),
                               what='LB gone')
