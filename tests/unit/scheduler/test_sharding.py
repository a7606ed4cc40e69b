"""Shuffle sharding by rendezvous hashing (scheduler/sharding.py)."""

import random

import pytest

from scheduler import sharding

PROJECTS = ['project-%04d' % n for n in range(3000)]
TWENTY = ['cluster-%02d' % n for n in range(20)]


def shards(clusters, size=3, projects=PROJECTS):
    return {p: set(sharding.shard(p, clusters, size)) for p in projects}


def test_known_values_never_change():
    # Frozen: every process, host and release must agree on shards.
    assert sharding.score('p', 'c').hex() == '0af237dec388ec34'
    assert sharding.shard('project-0001', TWENTY, 3) == (
        'cluster-00', 'cluster-14', 'cluster-13')


def test_deterministic_and_independent_of_order():
    shuffled = list(TWENTY)
    random.Random(4).shuffle(shuffled)
    found = sharding.shard('p1', TWENTY, 4)
    assert sharding.shard('p1', shuffled, 4) == found
    assert sharding.shard('p1', iter(shuffled), 4) == found


@pytest.mark.parametrize('size', [1, 3, 7])
def test_shard_has_size_members_highest_scores_first(size):
    found = sharding.shard('p1', TWENTY, size)
    assert len(found) == len(set(found)) == size
    ranked = sorted(TWENTY, key=lambda c: sharding.score('p1', c),
                    reverse=True)
    assert list(found) == ranked[:size]


@pytest.mark.parametrize('size', [20, 25])
def test_shard_larger_than_the_fleet_is_the_fleet(size):
    assert sorted(sharding.shard('p1', TWENTY, size)) == TWENTY


def test_projects_are_spread_over_every_cluster():
    load = dict.fromkeys(TWENTY, 0)
    for members in shards(TWENTY).values():
        for name in members:
            load[name] += 1
    expected = len(PROJECTS) * 3 / 20          # 450 each
    assert all(0.8 * expected < n < 1.2 * expected for n in load.values())


def test_adding_a_cluster_moves_about_k_over_n_plus_one_of_projects():
    before = shards(TWENTY)
    after = shards(TWENTY + ['cluster-new'])
    moved = [p for p in PROJECTS if before[p] != after[p]]
    # Each project's shard changes iff the new cluster enters its top 3:
    # 3/21 of the projects, and then by exactly that one member.
    assert 0.11 < len(moved) / len(PROJECTS) < 0.175
    for p in moved:
        assert after[p] - before[p] == {'cluster-new'}
        assert len(before[p] - after[p]) == 1


def test_removing_a_cluster_moves_only_projects_that_had_it():
    gone = 'cluster-07'
    before = shards(TWENTY)
    after = shards([c for c in TWENTY if c != gone])
    for p in PROJECTS:
        if gone in before[p]:
            assert before[p] - after[p] == {gone}
            assert len(after[p] - before[p]) == 1
        else:
            assert after[p] == before[p]
