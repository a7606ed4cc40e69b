"""RecentErrorsWeigher (scheduler/weighers/recent_errors.py)."""

from scheduler.weighers import recent_errors
from tests.unit.scheduler import fakes


def test_weighs_recent_errors_and_avoids_them_by_default():
    weigher = recent_errors.RecentErrorsWeigher(fakes.options())
    fleet = [fakes.cluster('a', recent_errors=12), fakes.cluster('b')]
    assert weigher.weigh_all(fleet, fakes.request()) == [12, 0]
    assert weigher.weight_multiplier(fakes.request()) == -1.0
