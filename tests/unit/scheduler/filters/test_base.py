"""The filter base class (scheduler/filters/__init__.py)."""

from scheduler import filters
from tests.unit.scheduler import fakes


class OddFilter(filters.BaseClusterFilter):
    def cluster_passes(self, cluster, request):
        return None if int(cluster.name[1:]) % 2 else 'even'


def test_filter_all_keeps_order_and_explains_each_removal():
    fleet = [fakes.cluster('c%d' % n) for n in (5, 2, 3, 4, 1)]
    kept, removed = OddFilter(fakes.options()).filter_all(
        fleet, fakes.request())
    assert fakes.names(kept) == ['c5', 'c3', 'c1']
    assert [(c.name, why) for c, why in removed] == [('c2', 'even'),
                                                     ('c4', 'even')]


def test_options_are_kept_for_subclasses():
    options = fakes.options(shard_size=4)
    assert OddFilter(options).options.shard_size == 4
