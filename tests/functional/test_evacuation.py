"""Evacuation of a real Caddy cluster under real traffic (issue 11, ★).

The scenario is tests/functional/evacuation.py (also run at larger sizes
by benchmarks/evacuation.py): ten load balancers on ``src``, clients on
all of them, a control phase of plain config changes, then
``multilb-manage cluster evacuate src``.

Expected: the evacuation fails no request beyond what Caddy's own config
loads reset (compared with the control phase, in the same run), the
source ends empty, only the target serves, and Octavia's view of every
object (``updated_at``, statuses) is untouched. The figures are printed.
"""

import json
import signal
import time

import pytest

from multilb import moves
from multilb import store
from tests.functional import caddy_lab
from tests.functional import evacuation
from tests.functional import fleet as fleet_mod
from tests.functional.helpers import manage_json, wait_lb
from tools.localstack import process as ls_process

LBS = 10


@pytest.fixture(scope='module')
def lab(tmp_path_factory, member_lab):
    workdir = tmp_path_factory.mktemp('evacuation', numbered=True)
    with caddy_lab.caddy_fleet(workdir, evacuation.CLUSTERS, members=2,
                               prefix='ev', options=evacuation.OPTIONS,
                               lab=member_lab) as (fleet, nodes, members):
        yield fleet, fleet.connection(), nodes, members


@pytest.fixture
def migrate_requests():
    """``tcp_migrate_req=1`` (what admin/manage.rst asks of a host where
    two clusters share a VIP during a move), restored afterwards."""
    before = evacuation.migrate_requests(1)
    yield before is not None
    if before is not None:
        evacuation.migrate_requests(before)


def test_evacuating_a_cluster_under_traffic(lab, migrate_requests):
    fleet, conn, nodes, members = lab
    lb_ports = evacuation.create_on(fleet, conn, members, LBS)
    assert {manage_json(fleet, 'lb', 'show', lb_id)['cluster']
            for lb_id in lb_ports} == {'src'}

    figures = evacuation.run(fleet, conn, nodes, lb_ports)
    print('\n' + evacuation.report(figures, LBS, migrate_requests))

    done = figures['evacuate']
    assert done.returncode == 0, (done.stdout, done.stderr)
    summary = figures['summary']
    assert summary['moved'] == LBS and summary['failed'] == 0
    assert figures['rate'] >= 200
    # Only resets of new connections (a kept-alive one is retried), and no
    # more per node config load than plain config changes cause (Caddy
    # binds new sockets and closes the old ones at every load), with a
    # margin of 5 for chance on such small counts.
    for _when, _port, _keep_alive, error in figures['failures']:
        assert 'RemoteDisconnected' in error or 'Reset' in error, error
    control, evac = figures['control'], figures['evacuation']
    assert evac['loads'] > 0 and control['loads'] > 0
    assert evac['failed'] * control['loads'] <= (
        control['failed'] + 5) * evac['loads'], (control, evac)
    # both clusters served during the evacuation, only dst afterwards
    assert set(evac['served_by']) == {'src', 'dst'}
    assert {s[2] for s in figures['served']
            if s[0] > figures['evacuated_at'] + 0.5} == {'dst'}
    for node in nodes['src']:
        assert caddy_lab.servers_on(node) == {}
    for node in nodes['dst']:
        held = {name.split('--')[0] for name in caddy_lab.servers_on(node)}
        assert held == set(lb_ports)
    assert {manage_json(fleet, 'lb', 'show', lb_id)['cluster']
            for lb_id in lb_ports} == {'dst'}
    listed = {c['name']: c for c in manage_json(fleet, 'cluster', 'list')}
    assert listed['src']['placed'] == 0 and listed['dst']['placed'] == LBS
    # Octavia saw nothing
    assert figures['after'] == figures['before']


# -- the agent SIGKILLed during moves -------------------------------------

def _kill_driver_agent(fleet):
    """SIGKILL the driver agent and its provider agents, then start it
    again (the new multilb agent takes the clusters over once the dead
    one's locks expire, 5 s in this lab)."""
    agent = fleet.octavia.driver_agent
    offspring = ls_process.descendants(agent.pid)
    agent.kill(signal.SIGKILL)
    for pid, starttime in offspring:
        ls_process._signal_pid(pid, starttime, signal.SIGKILL)
    fleet_mod.wait_for(lambda: not agent.alive() and not any(
        ls_process.pid_alive(*child) for child in offspring), timeout=10,
        what='the killed driver agent gone')
    fleet.octavia.start_driver_agent()


def _step(kv, lb_id, nodes):
    """Where a move of ``lb_id`` to ``src`` is, read from the store."""
    entry = kv.get(moves.move_key(lb_id))
    move = json.loads(entry.value) if entry else None
    if move is None:
        return 'done'
    if move['phase'] == moves.EVICTING:
        return 'switched, source not emptied'
    held = any(name.startswith(lb_id) for node in nodes['src']
               for name in caddy_lab.servers_on(node))
    return 'applied on the target, not switched' if held else (
        'queued, not applied')


def _wait_step(kv, lb_id, nodes, wanted, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        step = _step(kv, lb_id, nodes)
        if step == wanted or step == 'done':
            return step
        time.sleep(0.005)
    return _step(kv, lb_id, nodes)


def _weights(nodes, lb_id):
    """The member weights of each of ``lb_id``'s pools on each node."""
    found = []
    for node in nodes:
        for name, server in caddy_lab.servers_on(node).items():
            if not name.startswith(lb_id):
                continue
            for route in server['routes']:
                for handler in route['handle']:
                    policy = (handler.get('load_balancing') or {}).get(
                        'selection_policy') or {}
                    if 'weights' in policy:
                        found.append(sorted(policy['weights']))
    return found


def test_a_move_survives_the_agent_killed_at_each_step(lab):
    """Three moves back from dst to src, the agent SIGKILLed at a
    different step of each (read from the store as it happens); a member
    change sent during one of them. Every load balancer is served
    throughout and ends on exactly one cluster, the change ACTIVE there."""
    fleet, conn, nodes, members = lab
    kv = store.get_kv_store(fleet.etcd.store_url + '?prefix=/multilb/')
    lb_ports = evacuation.create_on(fleet, conn, members, 3, cluster='dst',
                                    prefix='kill')
    client = evacuation.Client(sorted(lb_ports.values()), keep_alive=True)
    client.start()
    hit = []
    changed = None
    try:
        for lb_id, wanted in zip(lb_ports, (
                'queued, not applied', 'applied on the target, not switched',
                'switched, source not emptied')):
            wait_lb(conn, lb_id, wait=120)
            queued = manage_json(fleet, 'lb', 'move', lb_id, '--to', 'src',
                                 '--no-wait')
            assert queued['target'] == 'src'
            if changed is None:
                changed = lb_id
                pool_id = conn.load_balancer.get_load_balancer(
                    lb_id).pools[0]['id']
                member = next(iter(conn.load_balancer.members(pool_id)))
                conn.load_balancer.update_member(member, pool_id, weight=5)
            hit.append(_wait_step(kv, lb_id, nodes, wanted))
            _kill_driver_agent(fleet)
        for lb_id in lb_ports:
            fleet_mod.wait_for(lambda: _step(kv, lb_id, nodes) == 'done',
                               timeout=120, what='move of %s' % lb_id)
            wait_lb(conn, lb_id, wait=120)
    finally:
        client.stop.set()
        client.join(30)
    print('\nagent SIGKILLed at: %s; %d requests, %d failed' % (
        '; '.join(hit), len(client.served), len(client.failures)))
    # a kill reloads no Caddy node; the moves do (see the test above)
    for _when, _port, _keep_alive, error in client.failures:
        assert 'RemoteDisconnected' in error or 'Reset' in error, error
    assert len(client.failures) * 1000 <= len(client.served)
    for lb_id, port in lb_ports.items():
        assert any(s[1] == port for s in client.served)
        on = {name for name in evacuation.CLUSTERS
              if any(n.startswith(lb_id) for node in nodes[name]
                     for n in caddy_lab.servers_on(node))}
        assert on == {manage_json(fleet, 'lb', 'show', lb_id)['cluster']}
    assert manage_json(fleet, 'lb', 'show', changed)['cluster'] == 'src'
    weights = _weights(nodes['src'], changed)
    assert weights and all(5 in w for w in weights), weights
    lbc = conn.load_balancer
    pool_id = lbc.get_load_balancer(changed).pools[0]['id']
    assert {(m.weight, m.provisioning_status)
            for m in lbc.members(pool_id)} >= {(5, 'ACTIVE')}


def test_a_failover_on_a_draining_cluster_moves_the_lb(lab):
    """Octavia's failover of a load balancer whose cluster is draining:
    moved make-before-break (served throughout), then ACTIVE on the
    other cluster; on a cluster in service: failed over in place."""
    fleet, conn, nodes, members = lab
    lbc = conn.load_balancer
    lb_ports = evacuation.create_on(fleet, conn, members, 2, cluster='src',
                                    prefix='fo')
    moving, staying = list(lb_ports)
    client = evacuation.Client(sorted(lb_ports.values()), keep_alive=True)
    client.start()
    try:
        manage_json(fleet, 'cluster', 'drain', 'src')
        lbc.failover_load_balancer(moving)
        wait_lb(conn, moving, wait=120)
        fleet_mod.wait_for(
            lambda: manage_json(fleet, 'lb', 'show', moving)['move'] is None,
            timeout=60, what='the source emptied')
        manage_json(fleet, 'cluster', 'undrain', 'src')
        lbc.failover_load_balancer(staying)
        wait_lb(conn, staying, wait=120)
    finally:
        client.stop.set()
        client.join(30)
    assert manage_json(fleet, 'lb', 'show', moving)['cluster'] == 'dst'
    assert manage_json(fleet, 'lb', 'show', staying)['cluster'] == 'src'
    for node in nodes['src']:
        assert not any(n.startswith(moving)
                       for n in caddy_lab.servers_on(node))
    for node in nodes['dst']:
        assert any(n.startswith(moving) for n in caddy_lab.servers_on(node))
    for lb_id in lb_ports:
        lb = lbc.get_load_balancer(lb_id)
        assert (lb.provisioning_status, lb.operating_status) == (
            'ACTIVE', 'ONLINE')
    for _when, _port, _keep_alive, error in client.failures:
        assert 'RemoteDisconnected' in error or 'Reset' in error, error
    assert len(client.failures) * 1000 <= len(client.served)
    assert {s[2] for s in client.served
            if s[1] == lb_ports[moving]} == {'src', 'dst'}
