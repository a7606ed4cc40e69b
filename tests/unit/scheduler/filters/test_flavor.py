"""FlavorFilter (scheduler/filters/flavor.py)."""

from scheduler.filters import flavor
from tests.unit.scheduler import fakes

FLEET = [fakes.cluster('gold1', tags=['gold']),
         fakes.cluster('gold2', tags=['gold', 'ssd'], backend='f5'),
         fakes.cluster('plain', backend='f5')]


def run(metadata):
    return fakes.run(flavor.FlavorFilter(fakes.options()), FLEET,
                     fakes.request(flavor=metadata))


def test_no_flavor_keeps_every_cluster():
    assert run({}) == (['gold1', 'gold2', 'plain'], {})


def test_flavor_naming_clusters():
    assert run({'clusters': ['plain']}) == (['plain'], {
        'gold1': "not one of the flavor's clusters (plain)",
        'gold2': "not one of the flavor's clusters (plain)"})


def test_flavor_by_tags_needs_every_tag():
    assert run({'cluster_tags': ['gold']})[0] == ['gold1', 'gold2']
    kept, removed = run({'cluster_tags': ['ssd', 'gold']})
    assert kept == ['gold2']
    assert removed == {'gold1': "lacks the flavor's tag(s) ssd",
                       'plain': "lacks the flavor's tag(s) gold, ssd"}


def test_flavor_by_backend():
    kept, removed = run({'backend': 'f5'})
    assert kept == ['gold2', 'plain']
    assert removed == {'gold1': 'backend fake, the flavor requires f5'}


def test_every_key_must_match_and_every_mismatch_is_told():
    kept, removed = run({'clusters': ['gold2', 'plain'],
                         'cluster_tags': ['gold'], 'backend': 'f5'})
    assert kept == ['gold2']
    assert removed == {
        'gold1': "not one of the flavor's clusters (gold2, plain); "
                 'backend fake, the flavor requires f5',
        'plain': "lacks the flavor's tag(s) gold"}


def test_placement_keys_do_not_filter():
    assert run({'placement': 'pack', 'shard_size': 1})[0] == [
        'gold1', 'gold2', 'plain']
