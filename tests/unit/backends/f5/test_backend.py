"""The F5 backend (backends/f5/backend.py) against the AS3 device
EMULATOR (tools/localstack/as3_device.py): every declaration it sends is
validated against F5's published AS3 schema by the emulator."""

import logging
import threading
import time

import pytest

from backends import exceptions
from backends import transport
from backends.f5 import backend as f5
from backends.f5 import client as client_mod
from multilb import exceptions as multilb_exc
from multilb.conf import clusters as cluster_conf
from tests.unit import fixtures as fx
from tools.localstack import as3_device

PROJECT = '0a1b2c3d4e5f60718293a4b5c6d7e8f9'
OTHER_PROJECT = 'f0e1d2c3b4a5968778695a4b3c2d1e0f'
NETWORK = '7d3f6a2e-2b1c-4f5e-9a8b-1c2d3e4f5a6b'
PASSWORD = 'f5-admin-password-secret'
TENANT = 'mlb_%s_%s' % (PROJECT, NETWORK)


def graph(lb_id=fx.LB, project=PROJECT, **kwargs):
    kwargs.setdefault('vip_network_id', NETWORK)
    g = fx.lb_graph(project_id=project, **kwargs)
    g['loadbalancer_id'] = lb_id
    return g


def cluster(*devices, **options):
    values = {'endpoints': [d.url for d in devices], 'username': 'admin',
              'password': PASSWORD, 'task_poll_interval': 0.02,
              'busy_wait': 0.05, 'busy_wait_max': 0.2,
              'divergence_check_interval': 0.5, 'change_timeout': 30.0,
              'task_timeout': 30.0, 'probe_timeout': 2.0}
    values.update(options)
    return cluster_conf.ClusterConfig(
        name='bigip-a', backend='f5', max_loadbalancers=0, description='',
        backend_class=f5.F5Backend, options=values)


@pytest.fixture
def device():
    with as3_device.AS3Device(users={'admin': PASSWORD}) as dev:
        yield dev


def make(*devices, **options):
    backend = f5.F5Backend(cluster(*devices, **options))
    backend.breaker = transport.ClusterBreaker('bigip-a')
    backend.start()
    return backend


@pytest.fixture
def backend(device):
    instance = make(device)
    yield instance
    instance.stop()


def hold_device(device, seconds=0.6):
    """Someone else's declaration holds the device lock ``seconds``."""
    device.delay = seconds
    other = client_mod.AS3Client(
        transport.Transport(device.url, 2, 10, retries=0), 'admin',
        PASSWORD)
    threading.Thread(target=other.declare_applications, args=(
        'Operator', {'app': {'class': 'Application'}}, '3.56.0'),
        daemon=True).start()
    while not device.busy:
        time.sleep(0.001)


def held(device):
    """``{tenant: [application names]}`` the device holds."""
    return {t: sorted(k for k, v in body.items()
                      if isinstance(v, dict) and v.get('class') ==
                      'Application')
            for t, body in device.tenants.items()}


def test_full_graph_is_declared_in_the_project_network_tenant(backend,
                                                              device):
    backend.apply_loadbalancer(graph())

    assert held(device) == {TENANT: ['lb_' + fx.LB]}
    app = device.tenants[TENANT]['lb_' + fx.LB]
    assert app['vs_' + fx.L_HTTP]['class'] == 'Service_HTTP'
    assert app['vs_' + fx.L_TLS]['redirect80'] is False
    assert backend.list_loadbalancer_ids() == {fx.LB}


def test_apply_twice_is_one_application(backend, device):
    backend.apply_loadbalancer(graph())
    before = device.tenants[TENANT]
    backend.apply_loadbalancer(graph())

    assert device.tenants[TENANT] == before
    assert held(device) == {TENANT: ['lb_' + fx.LB]}


def test_two_projects_are_two_tenants_and_the_last_delete_removes_one(
        backend, device):
    backend.apply_loadbalancer(graph('lb-a'))
    backend.apply_loadbalancer(graph('lb-b'))
    backend.apply_loadbalancer(graph('lb-c', project=OTHER_PROJECT))
    other = 'mlb_%s_%s' % (OTHER_PROJECT, NETWORK)
    assert held(device) == {TENANT: ['lb_lb-a', 'lb_lb-b'],
                            other: ['lb_lb-c']}

    backend.delete_loadbalancer('lb-c')
    backend.delete_loadbalancer('lb-a')
    backend.delete_loadbalancer('lb-a')            # already gone: fine

    assert held(device) == {TENANT: ['lb_lb-b']}
    assert device.counters['delete_all'] == 0


def test_a_load_balancer_another_agent_applied_is_found_for_delete(device):
    first = make(device)
    first.apply_loadbalancer(graph())
    first.stop()
    second = make(device)        # knows nothing of it: lists the device
    try:
        second.delete_loadbalancer(fx.LB)
    finally:
        second.stop()
    assert device.tenants == {}


def test_route_domain_of_the_vip_network_goes_on_every_address(device):
    backend = make(device, route_domains={NETWORK: '2'})
    try:
        backend.apply_loadbalancer(graph())
    finally:
        backend.stop()
    app = device.tenants[TENANT]['lb_' + fx.LB]
    assert app['vs_' + fx.L_HTTP]['virtualAddresses'][0].endswith('%2')
    members = app['pool_' + fx.POOL_WEB]['members']
    assert all(m['serverAddresses'][0].endswith('%2') for m in members)


def test_one_token_is_reused_and_renewed_after_a_401(backend, device):
    for n in range(5):
        backend.apply_loadbalancer(graph('lb-%d' % n))
    assert device.counters['logins'] == 1

    device.tokens.clear()                # tokens revoked on the device
    backend.apply_loadbalancer(graph('lb-9'))
    assert device.counters['logins'] == 2


def test_changes_wait_for_a_busy_device_and_coalesce_per_tenant(device):
    """Ten load balancers of two tenants changing while the device runs
    a slow declaration: they wait (nothing fails, the breaker stays
    closed), never two declarations at once, and go in few
    declarations."""
    backend = make(device)
    device.delay = 0.3
    errors = []

    def apply(n):
        project = PROJECT if n % 2 else OTHER_PROJECT
        try:
            backend.apply_loadbalancer(graph('lb-%d' % n, project=project))
        except Exception as exc:  # noqa: B902 - collected for the assert
            errors.append(exc)

    threads = [threading.Thread(target=apply, args=(n,)) for n in range(10)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        backend.stop()
    assert errors == []
    assert sum(len(apps) for apps in held(device).values()) == 10
    assert device.counters['concurrent_attempts'] == 0
    assert device.counters['declarations_processed'] <= 6
    assert backend.breaker.state == transport.BREAKER_CLOSED


def test_another_declarer_holding_the_lock_is_busy_not_a_failure(device):
    """Someone else's declaration runs (a 503 without Retry-After): the
    change waits and lands; the breaker does not count it."""
    backend = make(device, busy_wait=0.1)
    other = client_mod.AS3Client(
        transport.Transport(device.url, 2, 10, retries=0), 'admin',
        PASSWORD)
    device.delay = 0.6
    threading.Thread(target=other.declare_applications, args=(
        'Operator', {'app': {'class': 'Application'}}, '3.56.0')).start()
    while not device.busy:
        pass
    try:
        backend.apply_loadbalancer(graph())
    finally:
        backend.stop()
    assert 'lb_' + fx.LB in device.tenants[TENANT]
    assert device.counters['concurrent_attempts'] >= 1
    assert backend.breaker.snapshot()['failures'] == 0


def test_a_rejected_declaration_fails_that_load_balancer_only(backend,
                                                              device):
    backend.apply_loadbalancer(graph('lb-ok'))
    device.fail_next(422, '/mlb_x/lb_bad/pool: should be object')

    with pytest.raises(exceptions.BackendRejected) as err:
        backend.apply_loadbalancer(graph('lb-bad'))

    assert 'should be object' in str(err.value)
    assert held(device) == {TENANT: ['lb_lb-ok']}
    backend.apply_loadbalancer(graph('lb-next'))
    assert held(device) == {TENANT: ['lb_lb-next', 'lb_lb-ok']}


def test_a_device_restarted_empty_is_reported_for_re_apply(backend, device):
    backend.apply_loadbalancer(graph('lb-a'))
    backend.apply_loadbalancer(graph('lb-b'))
    assert backend.probe().resync_ids == frozenset()

    device.restart_empty()
    time.sleep(0.6)            # divergence_check_interval
    health = backend.probe()

    assert health.reachable
    assert health.resync_ids == {'lb-a', 'lb-b'}
    assert 'lacks 2 load balancer' in health.detail


def test_probe_of_a_down_device_says_unreachable(backend, device):
    device.down()
    health = backend.probe()
    assert not health.reachable
    assert '0 of 1 devices answer' in health.detail


def test_an_as3_older_than_the_minimum_gets_nothing(backend, device,
                                                    monkeypatch, caplog):
    monkeypatch.setattr(as3_device, 'AS3_VERSION', '3.45.0')
    with caplog.at_level(logging.WARNING):
        health = backend.probe()
        with pytest.raises(exceptions.BackendUnavailable) as err:
            backend.apply_loadbalancer(graph())
    assert 'runs AS3 3.45.0; multilb needs AS3 3.56.0' in health.detail
    assert 'needs AS3 3.56.0' in str(err.value)
    assert device.tenants == {}
    assert backend.breaker.state == transport.BREAKER_CLOSED


def test_declarations_follow_the_active_device_of_a_pair():
    with as3_device.AS3Device(users={'admin': PASSWORD}) as one, \
            as3_device.AS3Device(users={'admin': PASSWORD}) as two:
        one.failover_state, two.failover_state = 'standby', 'active'
        backend = make(one, two)
        try:
            backend.probe()
            backend.apply_loadbalancer(graph('lb-a'))
            one.failover_state, two.failover_state = 'active', 'standby'
            health = backend.probe()
            backend.apply_loadbalancer(graph('lb-b'))
        finally:
            backend.stop()
    assert held(two) == {TENANT: ['lb_lb-a']}
    assert held(one) == {TENANT: ['lb_lb-b']}
    # the new active device lacks what the old one had: re-applied
    assert health.resync_ids == {'lb-a'}


def test_statistics_are_increments_in_bytes(backend, device):
    backend.apply_loadbalancer(graph())
    vs = '/%s/lb_%s/vs_%s' % (TENANT, fx.LB, fx.L_HTTP)
    device.set_stats(vs, bits_in=8000, bits_out=16000, tot_conns=3,
                     cur_conns=1)
    assert backend.collect_statistics() == {}        # first reading
    device.set_stats(vs, bits_in=8800, bits_out=20000, tot_conns=5)

    found = backend.collect_statistics()[fx.L_HTTP]

    assert (found.bytes_in, found.bytes_out) == (100, 500)
    assert (found.total_connections, found.active_connections) == (2, 1)


def test_statistics_skip_a_round_while_the_device_is_busy(backend, device):
    backend.apply_loadbalancer(graph())
    device.tm_busy_503 = True
    device.delay = 0.5
    t = threading.Thread(target=backend.apply_loadbalancer,
                         args=(graph(),))
    t.start()
    while not device.busy:
        pass
    try:
        assert backend.collect_statistics() == {}
    finally:
        t.join(10)
    assert backend.breaker.snapshot()['failures'] == 0


def test_member_health_from_the_monitor_status(backend, device):
    g = graph()
    backend.apply_loadbalancer(g)
    pool = next(p for p in g['pools'] if p['pool_id'] == fx.POOL_WEB)
    first, second = pool['members']
    device.set_stats('/%s/lb_%s/pool_%s' % (TENANT, fx.LB, fx.POOL_WEB),
                     member='%s:%s' % (second['address'],
                                       second['protocol_port']),
                     monitor='down')

    found = backend.member_health({fx.LB: g})

    assert found == {first['member_id']: True, second['member_id']: False}


def test_credentials_never_reach_the_logs(backend, device, caplog):
    with caplog.at_level(logging.DEBUG):
        backend.apply_loadbalancer(graph())
        device.down()
        backend.probe()
    assert PASSWORD not in caplog.text
    assert fx.PRIVATE_KEY.splitlines()[1] not in caplog.text


@pytest.mark.parametrize('options,expected', [
    ({'endpoints': []}, 'endpoints: missing'),
    ({'endpoints': ['ftp://10.0.0.1']}, 'is not an https:// or http://'),
    ({'endpoints': ['https://admin:pw@10.0.0.1']}, 'carries credentials'),
    ({'password': ''}, 'password: missing'),
    ({'route_domains': {NETWORK: 'two'}}, 'is not a route domain id'),
    ({'self_ips': ['10.0.0.300']}, 'is not an IP address'),
])
def test_bad_options_are_clear_config_errors(options, expected):
    values = {'endpoints': ['https://192.0.2.10'], 'password': 'x'}
    values.update(options)
    with pytest.raises(multilb_exc.ConfigError) as err:
        f5.F5Backend.check_config(values)
    assert expected in str(err.value)
    assert 'pw@' not in str(err.value)


def test_management_and_self_ips_are_refused_addresses():
    found = f5.F5Backend.management_addresses({
        'endpoints': ['https://192.0.2.10', 'https://bigip-b.example:8443'],
        'self_ips': ['198.51.100.5']})
    assert found == {('192.0.2.10', 443), ('198.51.100.5', None)}


@pytest.mark.parametrize('otype,fields,expected', [
    ('listener', {'protocol': 'SCTP'}, 'supported: HTTP, HTTPS, TCP, '
                                       'TERMINATED_HTTPS, UDP'),
    ('listener', {'client_authentication': 'MANDATORY'}, 'supported: NONE'),
    ('listener', {'insert_headers': {'X-Forwarded-Port': 'true'}},
     'supported: X-Forwarded-For'),
    ('listener', {'allowed_cidrs': ['10.0.0.0/8', '192.168.0.0/16']},
     'supported: at most one'),
    ('pool', {'lb_algorithm': 'SOURCE_IP_PORT'}, 'SOURCE_IP_PORT is not'),
    ('pool', {'tls_enabled': True}, 'supported: false'),
    ('member', {'monitor_port': 8080}, 'monitors are per pool'),
    ('healthmonitor', {'type': 'TLS-HELLO'}, 'TLS-HELLO is not supported'),
    ('healthmonitor', {'delay': 300, 'max_retries_down': 5},
     'supported: at most 900 s'),
])
def test_what_as3_cannot_express_is_refused_at_the_api(otype, fields,
                                                       expected):
    with pytest.raises(exceptions.UnsupportedFeature) as err:
        f5.F5Backend.check_supported(otype, fields)
    assert expected in str(err.value)


def test_stop_deletes_the_tokens_it_made(device):
    for _ in range(3):
        backend = make(device)
        backend.apply_loadbalancer(graph())
        backend.probe()
        backend.stop()
    assert device.counters['logins'] == 6
    assert device.tokens == {}


def test_a_change_that_waits_too_long_is_withdrawn_and_keeps_its_place(
        device):
    """The device is held by someone else for longer than change_timeout:
    the apply fails as unavailable and nothing of it reaches the device
    later; its retry is sent first when the device frees."""
    backend = make(device, change_timeout=0.3, busy_wait=0.05,
                   busy_wait_max=0.05)
    device.delay = 1.0
    other = client_mod.AS3Client(
        transport.Transport(device.url, 2, 10, retries=0), 'admin',
        PASSWORD)
    threading.Thread(target=other.declare_applications, args=(
        'Operator', {'app': {'class': 'Application'}}, '3.56.0')).start()
    while not device.busy:
        pass
    try:
        with pytest.raises(exceptions.BackendUnavailable) as err:
            backend.apply_loadbalancer(graph('lb-late'))
        assert 'withdrawn' in str(err.value)
        time.sleep(1.2)                      # the device is free again
        assert TENANT not in device.tenants  # the withdrawn change never came
        device.delay = 0
        backend.apply_loadbalancer(graph('lb-late'))   # the agent's retry
    finally:
        backend.stop()
    assert held(device)[TENANT] == ['lb_lb-late']


def test_regex_rules_are_refused_at_the_api():
    with pytest.raises(exceptions.UnsupportedFeature) as err:
        f5.F5Backend.check_supported('l7rule', {'compare_type': 'REGEX'})
    assert 'supported: CONTAINS, ENDS_WITH, EQUAL_TO, STARTS_WITH' in str(
        err.value)


def test_removing_every_application_of_a_tenant_is_one_declaration(
        backend, device):
    for n in range(4):
        backend.apply_loadbalancer(graph('lb-%d' % n))
    backend.apply_loadbalancer(graph('lb-other', project=OTHER_PROJECT))
    hold_device(device)           # the removals wait together
    before = device.counters['declarations_processed']

    threads = [threading.Thread(target=backend.delete_loadbalancer,
                                args=('lb-%d' % n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    before += 1                   # the operator's declaration

    assert TENANT not in device.tenants
    assert held(device) == {'mlb_%s_%s' % (OTHER_PROJECT, NETWORK):
                            ['lb_lb-other'], 'Operator': ['app']}
    assert device.counters['declarations_processed'] - before == 1
    assert device.counters['delete_all'] == 0


def test_a_tenant_holding_more_is_never_removed_whole(backend, device):
    for n in range(3):
        backend.apply_loadbalancer(graph('lb-%d' % n))
    hold_device(device)
    threads = [threading.Thread(target=backend.delete_loadbalancer,
                                args=('lb-%d' % n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert held(device) == {TENANT: ['lb_lb-2'], 'Operator': ['app']}


def test_one_token_for_every_thread(backend, device):
    threads = [threading.Thread(target=backend.collect_statistics)
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert device.counters['logins'] == 1
