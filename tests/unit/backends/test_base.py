"""ApplianceBackend.check_supported (backends/base.py): what a tenant reads
when a cluster cannot do what the request asks."""

import pytest

from backends import base
from backends import exceptions


class Limited(base.ApplianceBackend):
    SUPPORTED_LISTENER_PROTOCOLS = frozenset({'TCP', 'HTTP'})
    SUPPORTED_POOL_PROTOCOLS = frozenset({'TCP', 'HTTP'})
    SUPPORTED_ALGORITHMS = frozenset({'ROUND_ROBIN'})
    SUPPORTED_HEALTH_MONITOR_TYPES = frozenset({'TCP'})
    SUPPORTED_SESSION_PERSISTENCE = frozenset({'SOURCE_IP'})
    SUPPORTED_L7_ACTIONS = frozenset()
    SUPPORTED_L7_RULE_TYPES = frozenset({'PATH'})

    def apply_loadbalancer(self, graph):
        pass

    def delete_loadbalancer(self, loadbalancer_id):
        pass

    def probe(self):
        pass

    def list_loadbalancer_ids(self):
        return set()


REFUSED = [
    ('listener', {'protocol': 'UDP'},
     'listener protocol UDP is not supported; supported: HTTP, TCP'),
    ('pool', {'protocol': 'PROXY'},
     'pool protocol PROXY is not supported; supported: HTTP, TCP'),
    ('pool', {'lb_algorithm': 'LEAST_CONNECTIONS'},
     'pool algorithm LEAST_CONNECTIONS is not supported; supported: '
     'ROUND_ROBIN'),
    ('pool', {'session_persistence': {'type': 'HTTP_COOKIE',
                                      'cookie_name': 'c'}},
     'pool session persistence HTTP_COOKIE is not supported; supported: '
     'SOURCE_IP'),
    ('healthmonitor', {'type': 'HTTP'},
     'healthmonitor type HTTP is not supported; supported: TCP'),
    ('l7policy', {'action': 'REJECT'},
     'l7policy action REJECT is not supported; supported: none'),
    ('l7rule', {'type': 'HOST_NAME'},
     'l7rule type HOST_NAME is not supported; supported: PATH'),
]


@pytest.mark.parametrize('otype,fields,message', REFUSED)
def test_refusal_names_the_value_and_what_is_supported(otype, fields,
                                                       message):
    with pytest.raises(exceptions.UnsupportedFeature) as err:
        Limited.check_supported(otype, fields)
    assert str(err.value) == message


@pytest.mark.parametrize('otype,fields', [
    ('listener', {'protocol': 'HTTP', 'connection_limit': 5}),
    ('pool', {'protocol': 'TCP', 'lb_algorithm': 'ROUND_ROBIN',
              'session_persistence': {'type': 'SOURCE_IP'}}),
    ('pool', {'name': 'only a rename'}),
    ('pool', {'session_persistence': None}),
    ('member', {'address': '192.0.2.1', 'weight': 3}),
    ('healthmonitor', {'type': 'TCP', 'delay': 3}),
    ('l7rule', {'type': 'PATH', 'value': '/x'}),
    # the same field name on another object type is not checked
    ('healthmonitor', {'protocol': 'UDP'}),
])
def test_supported_or_unrelated_fields_pass(otype, fields):
    Limited.check_supported(otype, fields)
