"""The embedded single-host defaults: sqlite state store shared by
octavia-api and the provider agent, file:// coordination (no etcd for
multilb), driven through the real Octavia API."""

import pytest

from tests.functional import fleet as fleet_mod
from tests.functional import helpers as contract


@pytest.fixture(scope='module')
def single(tmp_path_factory):
    workdir = tmp_path_factory.mktemp('single', numbered=True)
    started = fleet_mod.Fleet(workdir, {'one': 10, 'two': 10},
                              single_host=True).start()
    try:
        yield started
    finally:
        started.stop()


def test_full_graph_lifecycle_on_sqlite_and_file_locks(single):
    conn = single.connection()
    lbc = conn.load_balancer
    lb = contract.make_lb(conn, 'single', listeners=contract.FULL_GRAPH)
    [listener] = contract.listeners_of(conn, lb.id)
    [policy] = [lbc.get_l7_policy(p['id']) for p in listener.l7_policies]
    assert policy.provisioning_status == contract.ACTIVE
    assert single.appliance(lb.id)[0] in ('one', 'two')
    lbc.delete_load_balancer(lb, cascade=True)
    fleet_mod.wait_for(lambda: contract.gone(lbc.get_load_balancer, lb.id),
                       what='LB gone')
    assert contract.gone(lbc.get_listener, listener.id)
    assert single.appliance(lb.id) is None
