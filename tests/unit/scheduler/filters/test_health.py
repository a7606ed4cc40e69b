"""HealthFilter (scheduler/filters/health.py)."""

from scheduler.filters import health
from tests.unit.scheduler import fakes


def test_failing_clusters_are_removed_unknown_health_passes():
    fleet = [fakes.cluster('ok', healthy=True),
             fakes.cluster('unknown', healthy=None),
             fakes.cluster('down', healthy=False),
             fakes.cluster('tripped', healthy=True, breaker_open=True),
             fakes.cluster('both', healthy=False, breaker_open=True)]
    assert fakes.run(health.HealthFilter(fakes.options()), fleet) == (
        ['ok', 'unknown'], {
            'down': 'unhealthy (last probe failed)',
            'tripped': 'circuit breaker open',
            'both': 'unhealthy (last probe failed), circuit breaker open'})
