"""CapacityFilter (scheduler/filters/capacity.py)."""

from scheduler.filters import capacity
from tests.unit.scheduler import fakes


def test_full_and_over_full_clusters_are_removed():
    fleet = [fakes.cluster('room', max_loadbalancers=3, placed=2),
             fakes.cluster('full', max_loadbalancers=2, placed=2),
             fakes.cluster('lowered', max_loadbalancers=2, placed=3),
             fakes.cluster('unlimited', placed=10 ** 6)]
    assert fakes.run(capacity.CapacityFilter(fakes.options()), fleet) == (
        ['room', 'unlimited'], {
            'full': 'full (2 of 2 load balancers)',
            'lowered': 'full (3 of 2 load balancers)'})


def test_clusters_without_room_for_the_listeners_are_removed():
    fleet = [fakes.cluster('fits', max_listeners=5, listeners=3),
             fakes.cluster('tight', max_listeners=4, listeners=3),
             fakes.cluster('unlimited', listeners=10 ** 5)]
    request = fakes.request(listeners=2)
    assert fakes.run(capacity.CapacityFilter(fakes.options()), fleet,
                     request) == (['fits', 'unlimited'], {
                         'tight': 'no room for 2 listener(s) (3 of 4 '
                                  'listeners)'})
    # A load balancer without listeners still fits a cluster at its limit.
    assert fakes.run(capacity.CapacityFilter(fakes.options()), fleet,
                     fakes.request())[0] == ['fits', 'tight', 'unlimited']
