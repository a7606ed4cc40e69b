"""DrainFilter (scheduler/filters/drain.py)."""

from scheduler.filters import drain
from tests.unit.scheduler import fakes


def test_drained_clusters_are_removed():
    fleet = [fakes.cluster('a'), fakes.cluster('b', draining=True)]
    assert fakes.run(drain.DrainFilter(fakes.options()), fleet) == (
        ['a'], {'b': 'draining'})
