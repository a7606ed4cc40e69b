"""CapabilitiesFilter (scheduler/filters/capabilities.py)."""

from backends import exceptions
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


def no_connection_limit(otype, fields):
    """A backend's check_supported that refuses what no set can say."""
    if otype == 'listener' and fields.get('connection_limit', -1) != -1:
        raise exceptions.UnsupportedFeature(
            'listener connection_limit %s is not supported; supported: -1'
            % fields['connection_limit'])


LIMITED = [('listener', {'protocol': 'HTTP', 'connection_limit': 100}),
           ('pool', {'protocol': 'HTTP', 'lb_algorithm': 'ROUND_ROBIN'})]


def test_backend_check_refuses_what_the_sets_cannot_say():
    """A whole graph gets the check a single object gets at the API: a
    listener with a connection limit keeps the load balancer off a cluster
    whose backend refuses it, and the reason is the backend's."""
    fleet = [fakes.cluster('caddy-a', backend='caddy',
                           check_supported=no_connection_limit),
             fakes.cluster('caddy-b', backend='caddy',
                           check_supported=no_connection_limit),
             fakes.cluster('f5-a', backend='f5')]
    kept, removed = fakes.run(
        capabilities.CapabilitiesFilter(fakes.options()), fleet,
        fakes.request(needs={('listener.protocol', 'HTTP')},
                      objects=tuple(LIMITED)))
    assert kept == ['f5-a']
    assert removed == {
        name: 'cluster %s (backend caddy): listener connection_limit 100 '
              'is not supported; supported: -1' % name
        for name in ('caddy-a', 'caddy-b')}


def test_backend_check_passes_what_it_supports():
    allowed = [('listener', {'protocol': 'HTTP', 'connection_limit': -1})]
    kept, removed = fakes.run(
        capabilities.CapabilitiesFilter(fakes.options()),
        [fakes.cluster('caddy-a', check_supported=no_connection_limit)],
        fakes.request(objects=tuple(allowed)))
    assert (kept, removed) == (['caddy-a'], {})
