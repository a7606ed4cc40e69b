"""CaddyBackend's class-level checks (the API side: no I/O)."""

import pytest

from backends import exceptions
from backends.caddy import backend
from multilb import exceptions as multilb_exc

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
