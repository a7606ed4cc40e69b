"""AvailabilityZoneFilter (scheduler/filters/availability_zone.py)."""

import pytest

from scheduler.filters import availability_zone
from tests.unit.scheduler import fakes

FLEET = [fakes.cluster('a1', tags=['az1', 'ssd']),
         fakes.cluster('a2', tags=['az1']),
         fakes.cluster('b1', tags=['az2', 'ssd'])]


def run(zone):
    return fakes.run(availability_zone.AvailabilityZoneFilter(
        fakes.options()), FLEET, fakes.request(availability_zone=zone))


def test_no_availability_zone_keeps_every_cluster():
    assert run({}) == (['a1', 'a2', 'b1'], {})


def test_zone_naming_clusters():
    kept, removed = run({'clusters': ['a2', 'b1']})
    assert kept == ['a2', 'b1']
    assert removed == {'a1': "not one of the availability zone's clusters "
                             "(a2, b1)"}


@pytest.mark.parametrize('tags,expected', [
    (['az1'], ['a1', 'a2']),
    (['az1', 'ssd'], ['a1']),
    (['ssd'], ['a1', 'b1']),
])
def test_zone_by_tags_needs_every_tag(tags, expected):
    kept, removed = run({'cluster_tags': tags})
    assert kept == expected
    assert set(removed) == {'a1', 'a2', 'b1'} - set(expected)


def test_reason_lists_the_missing_tags_only():
    _kept, removed = run({'cluster_tags': ['az1', 'ssd']})
    assert removed == {'a2': "lacks the availability zone's tag(s) ssd",
                       'b1': "lacks the availability zone's tag(s) az1"}


def test_names_and_tags_must_both_match():
    kept, removed = run({'clusters': ['a2', 'b1'], 'cluster_tags': ['ssd']})
    assert kept == ['b1']
    assert removed['a1'].startswith("not one of the availability zone's")
    assert removed['a2'] == "lacks the availability zone's tag(s) ssd"


def test_ignored_amphora_keys_select_everything():
    assert run({'compute_zone': 'nova'})[0] == ['a1', 'a2', 'b1']
