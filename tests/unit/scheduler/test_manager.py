"""The cluster scheduler (scheduler/manager.py, scheduler/cluster_state.py)."""

import pytest

from multilb import exceptions
from scheduler import cluster_state
from scheduler import manager

REQUEST = cluster_state.PlacementRequest(loadbalancer_id='lb-9',
                                         project_id='proj-1')


def state(name, max_loadbalancers, placed):
    return cluster_state.ClusterState(name=name, backend='fake',
                                      max_loadbalancers=max_loadbalancers,
                                      placed=placed)


def select(*clusters):
    return [c.name for c in manager.ClusterScheduler().select(
        REQUEST, list(clusters))]


def test_least_loaded_first_ties_by_name():
    assert select(state('c', 10, 3), state('b', 10, 1), state('a', 10, 1),
                  state('d', 10, 2)) == ['a', 'b', 'd', 'c']


def test_load_is_absolute_not_relative():
    # 5 of 100 is emptier in ratio, but 4 placed is fewer LBs.
    assert select(state('big', 100, 5), state('small', 5, 4)) == [
        'small', 'big']


def test_unlimited_cluster_always_has_room():
    assert select(state('unlimited', 0, 1_000_000), state('full', 2, 2)) \
        == ['unlimited']


def test_full_and_over_full_clusters_are_left_out():
    assert select(state('full', 2, 2), state('lowered', 2, 3),
                  state('room', 3, 2)) == ['room']


def test_all_full_gives_one_reason_per_cluster():
    with pytest.raises(exceptions.NoValidCluster) as err:
        select(state('a', 2, 2), state('b', 5, 7))
    assert err.value.reasons == [
        ('CapacityFilter', 'a', 'full (2 of 2 load balancers)'),
        ('CapacityFilter', 'b', 'full (7 of 5 load balancers)')]
    assert err.value.last_filter == 'CapacityFilter'
    assert 'lb-9' in str(err.value)


def test_no_cluster_at_all():
    with pytest.raises(exceptions.NoValidCluster) as err:
        select()
    assert err.value.reasons == []


@pytest.mark.parametrize('max_lbs,placed,free', [
    (0, 0, None), (0, 50, None), (10, 3, 7), (10, 10, 0), (10, 12, 0)])
def test_free_slots(max_lbs, placed, free):
    assert state('x', max_lbs, placed).free == free
