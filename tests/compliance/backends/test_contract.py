"""The backend contract (backends/base.py), against every backend over its
appliance (devices.py): only what the contract promises."""

import concurrent.futures
import ipaddress
import json
import time
import urllib.parse
import uuid

import pytest

from backends import base
from backends import exceptions
from backends import types
from tests.compliance.backends import graphs as g


def _text(value):
    return json.dumps(value, sort_keys=True)


def _until(check, timeout=10.0, step=0.1):
    """``check()``'s last answer, once true or after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() >= deadline:
            return found
        time.sleep(step)


# -- apply --------------------------------------------------------------------

def test_apply_is_idempotent(backend, device):
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    once = device.snapshot()
    backend.apply_loadbalancer(graph)

    assert _text(device.snapshot()) == _text(once)
    assert device.holds() == {g.lb_id(graph): g.listener_ids(graph)}
    assert backend.list_loadbalancer_ids() == {g.lb_id(graph)}


def test_apply_removes_what_the_graph_no_longer_has(backend, device):
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    before = _text(device.snapshot())
    gone = [g.M2_ADDRESS, '/admin', '/healthz']   # member, L7 rule, monitor
    assert all(word in before for word in gone), before

    smaller = g.trimmed(graph)
    backend.apply_loadbalancer(smaller)

    assert device.holds() == {g.lb_id(graph): g.listener_ids(smaller)}
    after = _text(device.snapshot())
    assert [word for word in gone if word in after] == []


def test_apply_and_delete_of_one_lb_leave_the_others_alone(backend, device):
    mine, other = g.new_lb(), g.new_lb()
    backend.apply_loadbalancer(other)
    held = _text(device.snapshot(g.lb_id(other)))

    backend.apply_loadbalancer(mine)
    assert _text(device.snapshot(g.lb_id(other))) == held
    backend.apply_loadbalancer(g.trimmed(mine))
    assert _text(device.snapshot(g.lb_id(other))) == held
    backend.delete_loadbalancer(g.lb_id(mine))

    assert _text(device.snapshot(g.lb_id(other))) == held
    assert device.holds() == {g.lb_id(other): g.listener_ids(other)}


def test_applies_of_several_lbs_at_once_all_land(backend, device):
    """The agent applies different load balancers from several threads
    (``PARALLEL_APPLIES`` of them, when the backend asks for more)."""
    threads = min(max(4, type(backend).PARALLEL_APPLIES or 0), 8)
    applied = [g.new_lb() for _ in range(threads)]
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(backend.apply_loadbalancer, graph)
                       for graph in applied]:
            future.result(timeout=30)
    assert device.holds() == {g.lb_id(graph): g.listener_ids(graph)
                              for graph in applied}
    assert backend.list_loadbalancer_ids() == {
        g.lb_id(graph) for graph in applied}


# -- delete and listing -------------------------------------------------------

def test_delete_removes_it_and_an_absent_lb_is_a_success(backend, device):
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    backend.delete_loadbalancer(g.lb_id(graph))
    assert device.holds() == {}
    assert backend.list_loadbalancer_ids() == set()

    backend.delete_loadbalancer(g.lb_id(graph))
    backend.delete_loadbalancer(str(uuid.uuid4()))
    assert device.holds() == {}


def test_listing_is_exactly_what_was_applied_and_not_deleted(
        backend, device, make_backend):
    assert backend.list_loadbalancer_ids() == set()
    first, second, third = g.new_lb(), g.new_lb(), g.new_lb()
    for graph in (first, second, third):
        backend.apply_loadbalancer(graph)
    backend.delete_loadbalancer(g.lb_id(second))

    found = backend.list_loadbalancer_ids()
    assert found == {g.lb_id(first), g.lb_id(third)}
    assert found == set(device.holds())
    # another instance (an agent that took the cluster over) sees the same
    assert make_backend().list_loadbalancer_ids() == found


# -- probe --------------------------------------------------------------------

def test_probe_of_a_working_cluster(backend):
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    for _round in range(2):
        health = backend.probe()
        assert isinstance(health, types.ClusterHealth)
        assert health.reachable is True, health
        assert (health.resync, health.resync_ids) == (False, frozenset()), \
            health


def test_probe_of_a_cluster_that_is_down_says_so(backend, device):
    backend.apply_loadbalancer(g.new_lb())
    assert backend.probe().reachable
    device.down()
    try:
        started = time.monotonic()
        health = backend.probe()
        took = time.monotonic() - started
    finally:
        device.up()
    assert isinstance(health, types.ClusterHealth)
    assert health.reachable is False, health
    assert took < 10, took


def test_probe_of_a_hung_cluster_is_bounded(backend, device):
    """"A hung node must be noticed in seconds" (with the probe timeout
    the handle sets: half a second)."""
    if device.hang is None:
        pytest.skip('this appliance cannot hang')
    assert backend.probe().reachable
    device.hang()
    try:
        started = time.monotonic()
        health = backend.probe()
        took = time.monotonic() - started
    finally:
        device.up()
    assert health.reachable is False, health
    assert took < 5, took


def test_start_and_stop_with_the_cluster_down(make_backend, device):
    device.down()
    try:
        backend = make_backend()         # start(): no error
        assert backend.probe().reachable is False
        backend.stop()                   # and stop() neither
    finally:
        device.up()


@pytest.mark.parametrize('call', ['apply', 'delete', 'list', 'health',
                                  'statistics'])
def test_a_cluster_that_is_down_is_unavailable(backend, device, call):
    """What the agent retries: BackendUnavailable, no other error."""
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    if call not in device.down_calls:
        pytest.skip('this appliance cannot make %s fail' % call)
    run = {'apply': lambda: backend.apply_loadbalancer(graph),
           'delete': lambda: backend.delete_loadbalancer(g.lb_id(graph)),
           'list': backend.list_loadbalancer_ids,
           'health': lambda: backend.member_health({g.lb_id(graph): graph}),
           'statistics': backend.collect_statistics}[call]
    device.down()
    try:
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            future = pool.submit(run)
            with pytest.raises(exceptions.BackendUnavailable):
                future.result(timeout=20)
    finally:
        device.up()


def test_stop_releases_the_sessions_it_opened(make_backend, device):
    """``stop()``: "Release sessions" (a BIG-IP user holds at most 100
    tokens; an agent that restarts must not use them up)."""
    before = device.sessions()
    if before is None:
        pytest.skip('this appliance keeps no login sessions')
    backend = make_backend()
    backend.apply_loadbalancer(g.new_lb())
    backend.probe()
    assert device.sessions() > before
    backend.stop()
    assert device.sessions() == before


def test_resync_after_the_appliance_restarted_empty(make_backend, device):
    if device.restart_empty is None:
        pytest.skip('this appliance cannot restart apart from its backend')
    backend = make_backend(**device.resync_options)
    applied = [g.new_lb(), g.new_lb()]
    for graph in applied:
        backend.apply_loadbalancer(graph)
    assert backend.probe().reachable
    wanted = {g.lb_id(graph) for graph in applied}

    device.restart_empty()

    def flagged():
        health = backend.probe()
        return health if health.resync or wanted <= health.resync_ids \
            else None
    health = _until(flagged)
    assert health, backend.probe()
    assert health.reachable

    for graph in applied:     # what the agent does
        backend.apply_loadbalancer(graph)
    assert device.holds() == {g.lb_id(graph): g.listener_ids(graph)
                              for graph in applied}

    def settled():
        health = backend.probe()
        return not health.resync and not health.resync_ids
    assert _until(settled), backend.probe()


def test_verify_passes_after_apply_and_changes_nothing(backend, device):
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    before = _text(device.snapshot())
    backend.verify_loadbalancer(graph)
    assert _text(device.snapshot()) == before


def test_verify_fails_when_the_appliance_lost_it(backend, device):
    if type(backend).verify_loadbalancer is \
            base.ApplianceBackend.verify_loadbalancer:
        pytest.skip('the default verify trusts the apply (appliances that '
                    'acknowledge a change once every node serves it)')
    if device.restart_empty is None:
        pytest.skip('this appliance cannot restart apart from its backend')
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    device.restart_empty()
    with pytest.raises(exceptions.BackendUnavailable):
        backend.verify_loadbalancer(graph)


# -- health and statistics ----------------------------------------------------

def test_member_health_gives_verdicts_of_monitored_members(backend, device):
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    graphs = {g.lb_id(graph): graph}
    monitored = {g.find(graph, m)['member_id'] for m in (g.M1, g.M2)}

    found = backend.member_health(graphs)
    assert isinstance(found, dict)
    assert set(found) <= monitored, found      # M3's pool has no monitor
    assert all(isinstance(v, bool) for v in found.values()), found

    failing, passing = g.find(graph, g.M1), g.find(graph, g.M2)
    if not device.fail_member(graph, failing):
        return          # shapes only: its checks cannot fail in time here

    def verdict():
        found = backend.member_health(graphs)
        return found if found.get(failing['member_id']) is False else None
    found = _until(verdict, timeout=5)
    assert found == {failing['member_id']: False,
                     passing['member_id']: True}, \
        backend.member_health(graphs)


def test_statistics_are_increments_per_listener(backend, device):
    graph = g.new_lb()
    backend.apply_loadbalancer(graph)
    listener = g.find(graph, g.HTTP)['listener_id']
    first = backend.collect_statistics()     # may hold earlier counts
    assert isinstance(first, dict)
    for key, stats in first.items():
        assert isinstance(stats, types.ListenerStats)
        assert stats.listener_id == key
        assert key in g.listener_ids(graph)

    expected = device.add_traffic(graph, listener)
    found = backend.collect_statistics()
    assert set(found) <= g.listener_ids(graph)
    got = found.get(listener)
    assert got is not None and got.listener_id == listener, found
    assert {k: getattr(got, k) for k in expected} == expected, got

    # no new traffic: nothing is counted twice
    again = backend.collect_statistics().get(listener)
    if again is not None:
        assert (again.bytes_in, again.bytes_out, again.request_errors,
                again.total_connections) == (0, 0, 0, 0), again


# -- class level --------------------------------------------------------------

def test_management_addresses_are_the_endpoints_ip_literals(device):
    """Every address is an IP literal (the API process does no DNS); each
    TCP endpoint at an IP literal is among them."""
    options = dict(device.options())
    found = device.backend_class.management_addresses(options)
    for ip, port in found:
        ipaddress.ip_address(ip)
        assert port is None or isinstance(port, int), port
    for endpoint in options.get('endpoints') or ():
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme in ('http', 'https') and parts.port:
            assert (parts.hostname, parts.port) in found, (endpoint, found)
