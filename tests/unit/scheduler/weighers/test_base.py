"""Weigher base class and normaliser (scheduler/weighers/__init__.py)."""

import pytest

from scheduler import weighers
from tests.unit.scheduler import fakes


@pytest.mark.parametrize('values,expected', [
    ([], []),
    ([3], [0.0]),
    ([2, 2, 2], [0.0, 0.0, 0.0]),
    ([0, 5, 10], [0.0, 0.5, 1.0]),
    ([-4, 0, 4], [0.0, 0.5, 1.0]),
    ([10, 0, 2.5], [1.0, 0.0, 0.25]),
])
def test_normalize_scales_to_zero_one(values, expected):
    assert weighers.normalize(values) == expected


def test_normalize_with_fixed_bounds():
    assert weighers.normalize([5, 10], minval=0, maxval=20) == [0.25, 0.5]
    assert weighers.normalize([5, 10], minval=10, maxval=10) == [0.0, 0.0]


@pytest.mark.parametrize('class_name,option', [
    ('FreeCapacityWeigher', 'free_capacity_weight_multiplier'),
    ('TenantAffinityWeigher', 'tenant_affinity_weight_multiplier'),
    ('RecentErrorsWeigher', 'recent_errors_weight_multiplier'),
    ('IOPS', 'i_o_p_s_weight_multiplier'),
])
def test_multiplier_option_name(class_name, option):
    assert weighers.multiplier_option(class_name) == option


class RecentErrorsWeigher(weighers.BaseClusterWeigher):
    def weigh(self, cluster, request):
        return cluster.recent_errors


class UnknownWeigher(RecentErrorsWeigher):
    pass


def test_multiplier_is_read_from_the_matching_option():
    options = fakes.options(recent_errors_weight_multiplier=-2.5)
    weigher = RecentErrorsWeigher(options)
    assert weigher.weight_multiplier(fakes.request()) == -2.5


def test_weigher_without_an_option_gets_one():
    assert UnknownWeigher(fakes.options()).multiplier == 1.0


def test_weigh_all_weighs_each_in_order():
    fleet = [fakes.cluster('a', recent_errors=4),
             fakes.cluster('b', recent_errors=1)]
    assert RecentErrorsWeigher(fakes.options()).weigh_all(
        fleet, fakes.request()) == [4, 1]
