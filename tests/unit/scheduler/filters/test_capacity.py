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
