"""CaddyBackend's class-level checks (the API side: no I/O), and its
member health verdicts read from a scripted node's metrics."""

import logging

import pytest

from backends import exceptions
from backends.caddy import backend
from multilb.conf import clusters as cluster_conf
from multilb import exceptions as multilb_exc
from tests.unit.backends.test_transport import ScriptedServer
from tests.unit.backends.caddy import test_translate as tt
from tests.unit.backends.test_transport import reply

Caddy = backend.CaddyBackend


@pytest.mark.parametrize('endpoints,expected', [
    ([], 'endpoints: missing'),
    (['ftp://10.0.0.1:2019'], "'ftp://10.0.0.1:2019' is not an http"),
    (['http://'], "'http://' is not an http"),
])
def test_bad_endpoints_are_a_clear_config_error(endpoints, expected):
    with pytest.raises(multilb_exc.ConfigError) as err:
        Caddy.check_config({'endpoints': endpoints})
    assert expected in str(err.value)


def test_a_client_key_without_its_certificate_is_a_config_error():
    with pytest.raises(multilb_exc.ConfigError) as err:
        Caddy.check_config({'endpoints': ['https://10.0.0.1:2019'],
                            'client_key': '/etc/multilb/admin.key'})
    assert 'client_cert is empty' in str(err.value)


def test_good_endpoints_pass():
    assert Caddy.check_config({'endpoints': [
        'http://127.0.0.1:2019', 'https://node-b.example:2019']}) is None


@pytest.mark.parametrize('otype,fields,expected', [
    ('listener', {'protocol': 'TCP'},
     'listener protocol TCP is not supported; supported: HTTP'),
    ('listener', {'protocol': 'HTTP', 'connection_limit': 100},
     'connection_limit 100 is not supported'),
    ('listener', {'client_authentication': 'MANDATORY'},
     'client_authentication MANDATORY is not supported; supported: NONE'),
    ('listener', {'insert_headers': {'X-SSL-Client-DN': 'true'}},
     'insert_headers X-SSL-Client-DN not supported'),
    ('pool', {'lb_algorithm': 'SOURCE_IP_PORT'},
     'algorithm SOURCE_IP_PORT is not supported'),
    ('pool', {'tls_enabled': True}, 'pool tls_enabled is not supported'),
    ('healthmonitor', {'type': 'TCP'},
     'healthmonitor type TCP is not supported; supported: HTTP'),
])
def test_what_caddy_cannot_do_is_refused_naming_what_it_can(otype, fields,
                                                            expected):
    with pytest.raises(exceptions.UnsupportedFeature) as err:
        Caddy.check_supported(otype, fields)
    assert expected in str(err.value)


@pytest.mark.parametrize('otype,fields', [
    ('listener', {'protocol': 'HTTP', 'connection_limit': -1,
                  'client_authentication': 'NONE',
                  'insert_headers': {'X-Forwarded-For': 'true'}}),
    ('pool', {'protocol': 'HTTP', 'lb_algorithm': 'LEAST_CONNECTIONS',
              'tls_enabled': False}),
    ('l7rule', {'type': 'COOKIE', 'compare_type': 'REGEX'}),
])
def test_what_caddy_can_do_passes(otype, fields):
    assert Caddy.check_supported(otype, fields) is None


# -- member health: one Caddy gauge per dial address ------------------------

def _graph(lb_id, project, pools):
    """A backend-level graph: ``pools`` is ``{pool_id: (monitored,
    [(member_id, address, port, enabled)])}``."""
    return {
        'loadbalancer_id': lb_id, 'project_id': project,
        'admin_state_up': True, 'listeners': [],
        'pools': [_pool(pool_id, monitored, members)
                  for pool_id, (monitored, members) in pools.items()]}


def _pool(pool_id, monitored, members):
    monitor = {'type': 'HTTP', 'admin_state_up': True, 'delay': 1,
               'timeout': 1, 'max_retries': 1}
    return {'pool_id': pool_id, 'protocol': 'HTTP', 'admin_state_up': True,
            'lb_algorithm': 'ROUND_ROBIN',
            'healthmonitor': monitor if monitored else None,
            'members': [{'member_id': mid, 'address': address,
                         'protocol_port': port, 'admin_state_up': enabled,
                         'weight': 1, 'backup': False}
                        for mid, address, port, enabled in members]}


@pytest.fixture
def metrics_node():
    srv = ScriptedServer()
    srv.on('/metrics', reply(200, ''.join(
        'caddy_reverse_proxy_upstreams_healthy{upstream="%s"} %d\n' % item
        for item in (('10.0.0.5:80', 0), ('10.0.0.6:80', 1),
                     ('10.0.0.7:80', 1)))))
    yield srv
    srv.stop()


def _caddy(node, **options):
    """A started Caddy backend over the scripted ``node``."""
    config = cluster_conf.ClusterConfig(
        name='c1', backend='caddy', max_loadbalancers=0, description='',
        backend_class=Caddy, options=dict({
            'endpoints': [node.url], 'listen_address': '127.0.0.1',
            'connect_timeout': 1.0, 'read_timeout': 2.0,
            'probe_timeout': 1.0, 'divergence_check_interval': 30.0,
            'ca_bundle': '', 'client_cert': '', 'client_key': ''},
            **options))
    caddy = Caddy(config)
    caddy.start()
    return caddy


@pytest.fixture
def started(metrics_node):
    caddy = _caddy(metrics_node)
    yield caddy
    caddy.stop()


def test_a_member_address_of_one_pool_gets_its_verdict(started):
    graphs = {'lb-a': _graph('lb-a', 'proj-a', {'pa': (True, [
        ('ma-5', '10.0.0.5', 80, True), ('ma-6', '10.0.0.6', 80, True)])})}
    assert started.member_health(graphs) == {'ma-5': False, 'ma-6': True}


def test_a_member_address_two_projects_share_gets_no_verdict(
        started, caplog):
    """The gauge of 10.0.0.5:80 may be the other pool's checks (another
    path, other expected codes): neither member gets it."""
    caplog.set_level(logging.DEBUG)
    graphs = {
        'lb-a': _graph('lb-a', 'proj-a', {'pa': (True, [
            ('ma-5', '10.0.0.5', 80, True),
            ('ma-6', '10.0.0.6', 80, True)])}),
        'lb-b': _graph('lb-b', 'proj-b', {'pb': (True, [
            ('mb-5', '10.0.0.5', 80, True)])})}
    for _poll in range(3):
        assert started.member_health(graphs) == {'ma-6': True}
    said = [r for r in caplog.records if 'no health verdict' in r.message]
    assert said and {r.levelno for r in said} == {logging.DEBUG}
    assert 'ma-5, mb-5 at 10.0.0.5:80 (pools pa, pb)' in said[0].message
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    # the other load balancer left: the address is one pool's again
    del graphs['lb-b']
    assert started.member_health(graphs) == {'ma-5': False, 'ma-6': True}


@pytest.mark.parametrize('other,verdict', [
    # two pools of one load balancer
    ({'pa2': (True, [('ma2-7', '10.0.0.7', 80, True)])}, None),
    # a pool without a monitor writes the gauge too (passive state)
    ({'pa2': (False, [('ma2-7', '10.0.0.7', 80, True)])}, None),
    # another port of the address is another gauge
    ({'pa2': (True, [('ma2-7', '10.0.0.7', 81, True)])}, True),
    # a disabled member is not proxied to: it writes nothing
    ({'pa2': (True, [('ma2-7', '10.0.0.7', 80, False)])}, True),
])
def test_sharing_counts_every_pool_that_proxies_to_the_address(
        started, other, verdict):
    graphs = {'lb-a': _graph('lb-a', 'proj-a', dict(
        {'pa': (True, [('ma-7', '10.0.0.7', 80, True)])}, **other))}
    assert started.member_health(graphs).get('ma-7') is verdict


# -- batch_writes = false: one admin request per key -------------------------

@pytest.fixture
def unbatched_node():
    """A node that holds an http app already: creating it again is
    Caddy's 409 'key already exists', which the node logs as an error."""
    srv = ScriptedServer()
    srv.on('/metrics', reply(200, ''))
    srv.on('/config/apps/tls', reply(200, None))
    srv.on('/config/apps/http/servers', reply(200, {}))
    srv.on('/config/apps/http/servers/%s--li-http' % tt.LB, reply(200, None))
    yield srv
    srv.stop()


def test_an_unbatched_change_does_not_recreate_the_http_app(unbatched_node):
    caddy = _caddy(unbatched_node, batch_writes=False)
    try:
        caddy.apply_loadbalancer(tt.case_minimal_http())
    finally:
        caddy.stop()
    hits = unbatched_node.hits
    assert hits[('POST', '/config/apps/http/servers/%s--li-http' % tt.LB)] == 1
    assert hits[('PUT', '/config/apps/http/servers')] == 0
