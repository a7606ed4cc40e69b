"""``check_supported`` against octavia-lib's full value sets (API side:
no instance, no I/O): every value outside a backend's ``SUPPORTED_*``
set is refused with :class:`UnsupportedFeature` naming it and every
supported value; every value inside passes."""

import pytest

from backends import base
from backends import exceptions

# (object type, field, class attribute, octavia-lib's full set)
FIELDS = [
    ('listener', 'protocol', 'SUPPORTED_LISTENER_PROTOCOLS',
     base.ALL_LISTENER_PROTOCOLS),
    ('pool', 'protocol', 'SUPPORTED_POOL_PROTOCOLS',
     base.ALL_POOL_PROTOCOLS),
    ('pool', 'lb_algorithm', 'SUPPORTED_ALGORITHMS', base.ALL_ALGORITHMS),
    ('healthmonitor', 'type', 'SUPPORTED_HEALTH_MONITOR_TYPES',
     base.ALL_HEALTH_MONITOR_TYPES),
    ('l7policy', 'action', 'SUPPORTED_L7_ACTIONS', base.ALL_L7_ACTIONS),
    ('l7rule', 'type', 'SUPPORTED_L7_RULE_TYPES', base.ALL_L7_RULE_TYPES),
    ('pool', 'session_persistence', 'SUPPORTED_SESSION_PERSISTENCE',
     base.ALL_SESSION_PERSISTENCE),
]
IDS = ['%s.%s' % (otype, field) for otype, field, _a, _s in FIELDS]


def _fields(field, value):
    if field == 'session_persistence':
        return {field: {'type': value}}
    return {field: value}


@pytest.mark.parametrize('otype,field,attr,every', FIELDS, ids=IDS)
def test_unsupported_values_are_refused_naming_what_is_supported(
        backend_class, otype, field, attr, every):
    supported = getattr(backend_class, attr)
    assert supported <= every, supported - every
    unsupported = sorted(every - supported)
    if not unsupported:
        pytest.skip('%s supports every %s of octavia-lib' % (
            backend_class.__name__, IDS[FIELDS.index(
                (otype, field, attr, every))]))
    for value in unsupported:
        with pytest.raises(exceptions.UnsupportedFeature) as err:
            backend_class.check_supported(otype, _fields(field, value))
        message = str(err.value)
        assert value in message, message
        for name in supported:
            assert name in message, (name, message)


@pytest.mark.parametrize('otype,field,attr,every', FIELDS, ids=IDS)
def test_supported_values_pass(backend_class, otype, field, attr, every):
    for value in sorted(getattr(backend_class, attr)):
        assert backend_class.check_supported(
            otype, _fields(field, value)) is None


def test_capabilities_are_the_supported_sets(backend_class):
    """What the scheduler compares a request's ``needs`` with."""
    found = backend_class.capabilities()
    for otype, field, attr, _every in FIELDS:
        assert found['%s.%s' % (otype, field)] == frozenset(
            getattr(backend_class, attr))
