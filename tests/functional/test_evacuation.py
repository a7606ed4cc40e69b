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

import pytest

from tests.functional import caddy_lab
from tests.functional import evacuation
from tests.functional.helpers import manage_json

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
    lb_ports = evacuation.create_on_src(fleet, conn, members, LBS)
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
    # margin of 3 for chance on such small counts.
    for _when, _port, _keep_alive, error in figures['failures']:
        assert 'RemoteDisconnected' in error or 'Reset' in error, error
    control, evac = figures['control'], figures['evacuation']
    assert evac['loads'] > 0 and control['loads'] > 0
    assert evac['failed'] * control['loads'] <= (
        control['failed'] + 3) * evac['loads'], (control, evac)
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
