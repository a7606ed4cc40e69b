"""TenantShardFilter (scheduler/filters/tenant_shard.py)."""

import pytest

from scheduler.filters import tenant_shard
from scheduler import sharding
from tests.unit.scheduler import fakes

FLEET = [fakes.cluster('c%02d' % n) for n in range(10)]


def run(project='proj-1', size=3, clusters=FLEET, **request):
    plugin = tenant_shard.TenantShardFilter(fakes.options(shard_size=size))
    return fakes.run(plugin, clusters,
                     fakes.request(project=project, **request))


def test_off_by_default():
    plugin = tenant_shard.TenantShardFilter(fakes.options())
    assert fakes.run(plugin, FLEET)[0] == fakes.names(FLEET)


def test_project_keeps_its_shard_only():
    kept, removed = run()
    assert len(kept) == 3
    assert set(kept) == set(sharding.shard('proj-1', fakes.names(FLEET), 3))
    assert kept == sorted(kept)   # input order is kept
    assert len(removed) == 7
    assert set(removed.values()) == {
        "not in project proj-1's shard (3 of 10 clusters)"}


def test_same_project_same_shard_other_projects_differ():
    shards = {tuple(run(project='p%d' % n)[0]) for n in range(50)}
    assert run()[0] == run()[0]
    assert len(shards) > 20


def test_flavor_shard_size_overrides_the_option():
    assert len(run(size=3, flavor={'shard_size': 5})[0]) == 5
    assert len(run(size=0, flavor={'shard_size': 2})[0]) == 2


@pytest.mark.parametrize('size', [10, 11])
def test_shard_as_large_as_the_candidates_keeps_them_all(size):
    assert run(size=size) == (fakes.names(FLEET), {})


def test_shard_is_chosen_among_the_filters_input():
    # The flavor (an earlier filter) left four clusters: the shard is
    # among those four, whatever the rest of the fleet.
    four = FLEET[3:7]
    kept, _removed = run(size=2, clusters=four)
    assert len(kept) == 2 and set(kept) <= set(fakes.names(four))
