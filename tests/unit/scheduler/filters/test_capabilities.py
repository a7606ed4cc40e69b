"""CapabilitiesFilter (scheduler/filters/capabilities.py)."""

from scheduler.filters import capabilities
from tests.unit.scheduler import fakes

HTTP_ONLY = {'listener.protocol': frozenset({'HTTP', 'TCP'}),
             'pool.lb_algorithm': frozenset({'ROUND_ROBIN'})}


def run(clusters, needs):
    return fakes.run(capabilities.CapabilitiesFilter(fakes.options()),
                     clusters, fakes.request(needs=needs))


def test_cluster_serving_everything_passes():
    needs = {('listener.protocol', 'HTTP'),
             ('pool.lb_algorithm', 'ROUND_ROBIN')}
    assert run([fakes.cluster('lim', capabilities=HTTP_ONLY)], needs) == (
        ['lim'], {})


def test_reason_names_cluster_backend_and_what_is_supported():
    needs = {('listener.protocol', 'TERMINATED_HTTPS'),
             ('listener.protocol', 'HTTP'),
             ('pool.lb_algorithm', 'LEAST_CONNECTIONS')}
    fleet = [fakes.cluster('lim', backend='httponly',
                           capabilities=HTTP_ONLY),
             fakes.cluster('full')]
    assert run(fleet, needs) == (['full'], {'lim': (
        'cluster lim (backend httponly): listener protocol TERMINATED_HTTPS '
        'is not supported (supported: HTTP, TCP), pool lb_algorithm '
        'LEAST_CONNECTIONS is not supported (supported: ROUND_ROBIN)')})


def test_unknown_capability_key_supports_nothing():
    _kept, removed = run([fakes.cluster('x')],
                         {('l7policy.action', 'REJECT')})
    assert removed == {'x': 'cluster x (backend fake): l7policy action '
                            'REJECT is not supported (supported: none)'}


def test_request_needing_nothing_passes_everywhere():
    assert run([fakes.cluster('x', capabilities={})], set())[0] == ['x']
