"""Flavors and availability zones mapped to clusters, through the real API.

The session fleet has two FAKE clusters: alpha (tags gold, ssd) and beta
(tag silver).
"""

import json

import pytest
from openstack import exceptions as sdk_exc

from tests.functional import fleet as fleet_mod
from tests.functional.helpers import wait_lb


def _flavor(conn, name, data):
    lbc = conn.load_balancer
    profile = lbc.create_flavor_profile(
        name='fp-' + name, provider_name='multilb',
        flavor_data=json.dumps(data))
    return lbc.create_flavor(name=name, flavor_profile_id=profile.id,
                             enabled=True)


def _lbs(fleet, conn, count, **kwargs):
    lbs = [conn.load_balancer.create_load_balancer(
        name='flavored-%d' % i, project_id='proj-flavors',
        vip_subnet_id=fleet_mod.VIP_SUBNET, **kwargs) for i in range(count)]
    return [fleet.appliance(wait_lb(conn, lb.id).id)[0] for lb in lbs]


def test_capabilities_list_every_key_with_a_description(fleet, conn):
    found = {c.name: c.description for c in
             conn.load_balancer.provider_flavor_capabilities('multilb')}
    assert set(found) == {'clusters', 'cluster_tags', 'backend', 'placement',
                          'shard_size', 'loadbalancer_topology',
                          'compute_flavor', 'amp_image_tag'}
    assert 'carry every one of them' in found['cluster_tags']
    # openstacksdk has no call for the AZ capabilities: plain REST.
    response = conn.session.get(
        '%s/v2/lbaas/providers/multilb/availability_zone_capabilities' %
        fleet.octavia.api_url)
    zones = {c['name'] for c in
             response.json()['availability_zone_capabilities']}
    assert zones == {'clusters', 'cluster_tags', 'compute_zone',
                     'volume_zone', 'management_network',
                     'valid_vip_networks'}


def test_load_balancers_land_where_their_flavor_says(fleet, conn):
    gold = _flavor(conn, 'gold', {'cluster_tags': ['gold']})
    beta = _flavor(conn, 'beta-only', {'clusters': ['beta']})
    assert set(_lbs(fleet, conn, 3, flavor_id=gold.id)) == {'alpha'}
    assert set(_lbs(fleet, conn, 3, flavor_id=beta.id)) == {'beta'}


def test_availability_zone_selects_its_clusters(fleet, conn):
    lbc = conn.load_balancer
    profile = lbc.create_availability_zone_profile(
        name='azp-silver', provider_name='multilb',
        availability_zone_data=json.dumps({'cluster_tags': ['silver']}))
    lbc.create_availability_zone(
        name='az-silver', availability_zone_profile_id=profile.id,
        enabled=True)
    assert set(_lbs(fleet, conn, 3, availability_zone='az-silver')) == \
        {'beta'}


@pytest.mark.parametrize('data,expected', [
    ({'cluster_tags': ['platinum']},
     'no cluster has tag(s) platinum; tags in use: gold, silver, ssd'),
    ({'size': 'large'},
     'unknown flavor metadata key(s): size; valid keys: backend, '
     'cluster_tags, clusters, placement, shard_size (accepted and ignored: '
     'amp_image_tag, compute_flavor, loadbalancer_topology)'),
    ({'clusters': ['zeta']},
     'unknown cluster(s) zeta; configured clusters: alpha, beta'),
])
def test_bad_flavor_profile_is_refused_with_what_is_valid(conn, data,
                                                          expected):
    with pytest.raises(sdk_exc.HttpException) as err:
        conn.load_balancer.create_flavor_profile(
            name='fp-bad', provider_name='multilb',
            flavor_data=json.dumps(data))
    assert err.value.status_code == 501
    assert expected in str(err.value)
    names = [p.name for p in conn.load_balancer.flavor_profiles()]
    assert 'fp-bad' not in names


def test_generic_amphora_flavor_keys_are_accepted(conn):
    profile = conn.load_balancer.create_flavor_profile(
        name='fp-topology', provider_name='multilb',
        flavor_data=json.dumps({'loadbalancer_topology': 'SINGLE'}))
    assert profile.id
