"""The ``fake`` appliance backend (backends/fake/backend.py)."""

import json
import time

import pytest

from backends import exceptions
from backends.fake import backend as fake
from multilb import exceptions as multilb_exc
from multilb.conf import clusters as cluster_conf
from tests.unit import fixtures as fx


def cluster(tmp_path, name='fk', **options):
    values = {'fake_latency': 0.0,
              'fake_fault_file': str(tmp_path / 'faults.json'),
              'fake_state_dir': str(tmp_path / 'appliance')}
    values.update(options)
    return cluster_conf.ClusterConfig(
        name=name, backend='fake', max_loadbalancers=0, description='',
        backend_class=fake.FakeBackend, options=values)


@pytest.fixture
def backend(tmp_path):
    instance = fake.FakeBackend(cluster(tmp_path))
    instance.start()
    yield instance
    instance.stop()


def mirror(tmp_path, lb_id=fx.LB, name='fk'):
    path = tmp_path / 'appliance' / name / (lb_id + '.json')
    return path.read_text() if path.exists() else None


def faults(tmp_path, **values):
    (tmp_path / 'faults.json').write_text(json.dumps(values))


def test_apply_is_idempotent(backend, tmp_path):
    graph = fx.lb_graph()
    backend.apply_loadbalancer(graph)
    first = mirror(tmp_path)
    backend.apply_loadbalancer(graph)

    assert backend.list_loadbalancer_ids() == {fx.LB}
    assert mirror(tmp_path) == first
    assert json.loads(first)['pools'][0]['members'][1]['member_id'] == fx.M2


def test_apply_replaces_what_the_lb_held(backend, tmp_path):
    backend.apply_loadbalancer(fx.lb_graph())
    smaller = fx.lb_graph()
    smaller['listeners'] = smaller['listeners'][:1]
    backend.apply_loadbalancer(smaller)
    held = json.loads(mirror(tmp_path))
    assert [li['listener_id'] for li in held['listeners']] == [fx.L_HTTP]


def test_delete_is_idempotent(backend, tmp_path):
    backend.apply_loadbalancer(fx.lb_graph())
    backend.delete_loadbalancer(fx.LB)
    backend.delete_loadbalancer(fx.LB)
    backend.delete_loadbalancer('never-applied')
    assert backend.list_loadbalancer_ids() == set()
    assert mirror(tmp_path) is None


def test_clusters_are_separate_and_instances_of_one_cluster_share(tmp_path):
    one = fake.FakeBackend(cluster(tmp_path, 'one'))
    two = fake.FakeBackend(cluster(tmp_path, 'two'))
    one.apply_loadbalancer(fx.lb_graph())
    assert two.list_loadbalancer_ids() == set()
    # A worker restarted in the same process sees what its cluster holds.
    again = fake.FakeBackend(cluster(tmp_path, 'one'))
    assert again.list_loadbalancer_ids() == {fx.LB}


def test_without_state_dir_nothing_is_written(tmp_path):
    backend = fake.FakeBackend(cluster(tmp_path, fake_state_dir=''))
    backend.apply_loadbalancer(fx.lb_graph())
    assert backend.list_loadbalancer_ids() == {fx.LB}
    assert not (tmp_path / 'appliance').exists()


def test_mirror_redacts_tls_keys(backend, tmp_path):
    graph = fx.lb_graph()
    tls = graph['listeners'][1]
    assert tls['default_tls_container_data']['private_key'] == \
        fx.PRIVATE_KEY
    backend.apply_loadbalancer(graph)

    text = mirror(tmp_path)
    for secret in fx.SECRETS:
        assert secret not in text
    held = json.loads(text)['listeners'][1]
    for data in [held['default_tls_container_data']] + \
            held['sni_container_data']:
        assert data['private_key'] == '***'
        assert data['passphrase'] == '***'
        assert data['certificate'] == fx.TLS_DATA['certificate']
        assert data['primary_cn'] == 'www.example.com'
    # The graph handed in is not modified (the appliance needs the key).
    assert tls['default_tls_container_data']['private_key'] == \
        fx.PRIVATE_KEY


@pytest.mark.parametrize('operation,fault,error', [
    ('apply', 'unavailable', exceptions.BackendUnavailable),
    ('apply', 'rejected', exceptions.BackendRejected),
    ('delete', 'unavailable', exceptions.BackendUnavailable),
    ('delete', 'rejected', exceptions.BackendRejected),
])
def test_injected_faults(backend, tmp_path, operation, fault, error):
    backend.apply_loadbalancer(fx.lb_graph())
    faults(tmp_path, **{operation: fault})
    call = {'apply': lambda: backend.apply_loadbalancer(fx.lb_graph()),
            'delete': lambda: backend.delete_loadbalancer(fx.LB)}[operation]

    with pytest.raises(error) as err:
        call()

    assert str(err.value) == ('fake cluster fk: injected %s fault on %s '
                              'of load balancer %s' % (fault, operation,
                                                       fx.LB))
    assert backend.list_loadbalancer_ids() == {fx.LB}
    # Faults are read on every call: clearing the file heals the cluster.
    faults(tmp_path)
    call()


def test_fault_on_one_operation_leaves_the_other_alone(backend, tmp_path):
    faults(tmp_path, delete='rejected')
    backend.apply_loadbalancer(fx.lb_graph())
    assert backend.list_loadbalancer_ids() == {fx.LB}


def test_unreadable_fault_file_means_no_faults(backend, tmp_path):
    (tmp_path / 'faults.json').write_text('{not json')
    backend.apply_loadbalancer(fx.lb_graph())
    assert backend.list_loadbalancer_ids() == {fx.LB}


def test_injected_latency(backend, tmp_path):
    faults(tmp_path, latency=0.2)
    started = time.monotonic()
    backend.apply_loadbalancer(fx.lb_graph())
    assert time.monotonic() - started >= 0.2


def test_configured_latency(tmp_path):
    backend = fake.FakeBackend(cluster(tmp_path, fake_latency=0.15))
    started = time.monotonic()
    backend.delete_loadbalancer(fx.LB)
    assert time.monotonic() - started >= 0.15


def test_probe(backend, tmp_path):
    assert backend.probe().reachable
    faults(tmp_path, probe='unavailable')
    health = backend.probe()
    assert not health.reachable and health.detail


def test_members_down_fail_their_checks_and_unmonitored_get_no_verdict(
        backend, tmp_path):
    graphs = {fx.LB: fx.lb_graph()}
    assert backend.member_health(graphs) == {fx.M1: True, fx.M2: True}
    faults(tmp_path, members_down=[fx.M2])
    # M3's pool has no health monitor: no verdict at all.
    assert backend.member_health(graphs) == {fx.M1: True, fx.M2: False}


def test_statistics_are_increments_and_survive_a_counter_reset(
        backend, tmp_path):
    backend.apply_loadbalancer(fx.lb_graph())
    faults(tmp_path, counters={
        fx.L_HTTP: {'bytes_in': 100, 'total_connections': 4,
                    'active_connections': 2},
        'not-held': {'bytes_in': 5}})
    first = backend.collect_statistics()
    assert set(first) == {fx.L_HTTP}
    assert (first[fx.L_HTTP].bytes_in, first[fx.L_HTTP].total_connections,
            first[fx.L_HTTP].active_connections) == (100, 4, 2)
    faults(tmp_path, counters={fx.L_HTTP: {'bytes_in': 130,
                                           'total_connections': 5}})
    assert backend.collect_statistics()[fx.L_HTTP].bytes_in == 30
    # the appliance rebooted: its counter restarted below the last value
    faults(tmp_path, counters={fx.L_HTTP: {'bytes_in': 7,
                                           'total_connections': 1}})
    after = backend.collect_statistics()[fx.L_HTTP]
    assert (after.bytes_in, after.total_connections) == (7, 1)


def test_check_config():
    fake.FakeBackend.check_config({'fake_state_dir': ''})
    fake.FakeBackend.check_config({'fake_state_dir': '/var/lib/x'})
    with pytest.raises(multilb_exc.ConfigError) as err:
        fake.FakeBackend.check_config({'fake_state_dir': 'var/lib/x'})
    assert str(err.value) == ("fake_state_dir: 'var/lib/x' must be an "
                              "absolute path")


def test_options_are_declared_for_the_cluster_sections():
    names = [opt.name for opt in fake.FakeBackend.get_config_options()]
    assert names == ['fake_latency', 'fake_fault_file',
                     'fake_observe_health', 'fake_state_dir']


@pytest.mark.parametrize('otype,fields', [
    ('listener', {'protocol': 'PROMETHEUS'}),
    ('listener', {'protocol': 'SCTP'}),
    ('pool', {'protocol': 'PROXYV2', 'lb_algorithm': 'SOURCE_IP_PORT',
              'session_persistence': {'type': 'APP_COOKIE'}}),
    ('healthmonitor', {'type': 'UDP-CONNECT'}),
    ('l7policy', {'action': 'REDIRECT_PREFIX'}),
    ('l7rule', {'type': 'SSL_DN_FIELD'}),
])
def test_fake_supports_everything_octavia_has(otype, fields):
    fake.FakeBackend.check_supported(otype, fields)


def test_fake_refuses_what_octavia_does_not_have():
    with pytest.raises(exceptions.UnsupportedFeature) as err:
        fake.FakeBackend.check_supported('pool', {'lb_algorithm': 'RANDOM'})
    assert str(err.value) == (
        'pool algorithm RANDOM is not supported; supported: '
        'LEAST_CONNECTIONS, ROUND_ROBIN, SOURCE_IP, SOURCE_IP_PORT')
