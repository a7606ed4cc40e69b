"""TenantAffinityWeigher (scheduler/weighers/tenant_affinity.py)."""

from scheduler.weighers import tenant_affinity
from tests.unit.scheduler import fakes


def test_weighs_the_projects_load_balancers_on_each_cluster():
    weigher = tenant_affinity.TenantAffinityWeigher(fakes.options())
    fleet = [fakes.cluster('a', placed=50, project_placed=3),
             fakes.cluster('b', placed=10)]
    assert weigher.weigh_all(fleet, fakes.request()) == [3, 0]


def test_off_by_default():
    weigher = tenant_affinity.TenantAffinityWeigher(fakes.options())
    assert weigher.weight_multiplier(fakes.request()) == 0.0
