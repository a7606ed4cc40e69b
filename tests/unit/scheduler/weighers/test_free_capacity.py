"""FreeCapacityWeigher (scheduler/weighers/free_capacity.py)."""

from scheduler.weighers import free_capacity
from tests.unit.scheduler import fakes


def weigh(*clusters, **request):
    weigher = free_capacity.FreeCapacityWeigher(fakes.options())
    return weigher.weigh_all(list(clusters), fakes.request(**request))


def test_free_slots_of_limited_clusters():
    assert weigh(fakes.cluster('a', max_loadbalancers=10, placed=3),
                 fakes.cluster('b', max_loadbalancers=100, placed=95)) == [
        7, 5]


def test_unlimited_counts_as_one_larger_than_the_largest_cluster():
    # Largest limited cluster: 100 slots -> an unlimited one has 101.
    assert weigh(fakes.cluster('lim', max_loadbalancers=100, placed=40),
                 fakes.cluster('unl', placed=30)) == [60, 71]


def test_unlimited_cluster_holding_more_than_any_limit():
    # 500 placed on an unlimited cluster: it has 1 free slot of 501, so a
    # limited cluster with room is preferred.
    assert weigh(fakes.cluster('lim', max_loadbalancers=100, placed=0),
                 fakes.cluster('unl', placed=500)) == [100, 1]


def test_only_unlimited_clusters_spread_by_least_placed():
    assert weigh(fakes.cluster('a', placed=7), fakes.cluster('b', placed=2),
                 fakes.cluster('c')) == [1, 6, 8]


def test_spread_by_default_pack_flavor_reverses_the_multiplier():
    weigher = free_capacity.FreeCapacityWeigher(
        fakes.options(free_capacity_weight_multiplier=2.0))
    assert weigher.weight_multiplier(fakes.request()) == 2.0
    assert weigher.weight_multiplier(
        fakes.request(flavor={'placement': 'spread'})) == 2.0
    assert weigher.weight_multiplier(
        fakes.request(flavor={'placement': 'pack'})) == -2.0


def test_single_cluster():
    weigher = free_capacity.FreeCapacityWeigher(fakes.options())
    assert weigher.weigh(fakes.cluster('a', max_loadbalancers=4, placed=1),
                         fakes.request()) == 3
