"""Which addresses a tenant may use (multilb/addresses.py)."""

import ipaddress

import pytest

from multilb import addresses

REFUSED = {
    '127.0.0.1': 'loopback',
    '127.255.255.254': 'loopback',
    '::1': 'loopback',
    '0.0.0.0': 'unspecified',
    '0.1.2.3': 'unspecified',
    '::': 'unspecified',
    '169.254.169.254': 'link-local',     # the metadata service
    'fe80::1': 'link-local',
    '224.0.0.1': 'multicast',
    'ff02::1': 'multicast',
    '240.0.0.1': 'reserved',
    '255.255.255.255': 'broadcast',
    '::ffff:127.0.0.1': 'IPv4-mapped',
    '::ffff:10.0.0.1': 'IPv4-mapped',
    '64:ff9b::7f00:1': 'NAT64',
    '64:ff9b:1::1': 'NAT64',
    '2002:7f00:1::1': '6to4',
    '2001:0:4136:e378::1': 'Teredo',
    'fec0::1': 'site-local',
    'not-an-ip': 'not an IP',
}

# Ranges clouds really use, documentation and benchmarking ones included
# (octavia-tempest-plugin's members are 192.0.2.x).
ALLOWED = ['192.0.2.10', '198.18.0.5', '198.51.100.1', '203.0.113.9',
           '10.1.2.3', '172.16.0.1', '192.168.1.1', '100.64.0.1', '8.8.8.8',
           '2001:db8::1', 'fd00::1', '2600::1']


@pytest.mark.parametrize('value', sorted(REFUSED))
def test_refused_everywhere(value):
    guard = addresses.AddressGuard()
    with pytest.raises(addresses.AddressRefused) as caught:
        guard.check('member address', value)
    text = str(caught.value)
    assert text.startswith('member address %s is not allowed: ' % value)
    assert REFUSED[value] in text


@pytest.mark.parametrize('value', ALLOWED)
def test_allowed_by_default(value):
    assert addresses.AddressGuard().problem(value) is None


def test_operator_networks_and_appliance_endpoints():
    guard = addresses.AddressGuard(
        management=addresses.parse_networks(['10.20.0.0/16', 'fd42::/64'],
                                            'management_cidrs'),
        appliances=frozenset({ipaddress.ip_address('192.0.2.250')}))
    assert 'management network (10.20.0.0/16)' in guard.problem('10.20.3.4')
    assert 'management network' in guard.problem('fd42::9')
    assert 'appliance management address' in guard.problem('192.0.2.250')
    assert guard.problem('10.21.0.1') is None
    assert guard.problem('192.0.2.251') is None


def test_member_networks_allow_list():
    allowed = addresses.parse_networks(['198.18.0.0/24'], 'member_networks')
    guard = addresses.AddressGuard()
    assert guard.problem('198.18.0.9', allowed) is None
    why = guard.problem('198.18.1.9', allowed)
    assert why == ('it is outside the networks this cluster reaches '
                   '(198.18.0.0/24)')


def test_bad_cidr_is_named():
    with pytest.raises(ValueError) as caught:
        addresses.parse_networks(['10.0.0.0/33'], '[multilb] management_cidrs')
    assert "[multilb] management_cidrs: '10.0.0.0/33' is not a CIDR" in str(
        caught.value)


def test_misconfigured_guard_fails_closed():
    guard = addresses.AddressGuard(error='management_cidrs: bad')
    assert 'misconfigured' in guard.problem('192.0.2.10')
    assert 'bad' not in guard.problem('192.0.2.10')   # operator detail


def test_graph_walk_checks_members_monitors_and_vips():
    guard = addresses.AddressGuard(
        pools=addresses.parse_networks(['127.1.0.0/24'], 'pool'))
    graph = {'vip_address': '127.1.0.5',        # a pool VIP: exempt
             'additional_vips': [{'ip_address': '203.0.113.7'}],
             'pools': [{'members': [
                 {'address': '192.0.2.10', 'monitor_address': None},
                 {'address': '192.0.2.11', 'monitor_address': '::1'}]}]}
    with pytest.raises(addresses.AddressRefused) as caught:
        guard.check_graph(graph)
    assert caught.value.field == 'member monitor_address'
    graph['pools'][0]['members'][1]['monitor_address'] = None
    guard.check_graph(graph)
    graph['vip_address'] = '127.0.0.1'          # not from the pool
    with pytest.raises(addresses.AddressRefused) as caught:
        guard.check_graph(graph)
    assert caught.value.field == 'VIP address'
