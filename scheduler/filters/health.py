"""HealthFilter: no new load balancers on clusters known to be failing.

A cluster is removed when the provider agent's last probe failed or its
circuit breaker is open. A cluster of unknown health (never probed, or the
last probe is stale) passes: a stopped agent must not stop placements.
"""

from scheduler import filters


class HealthFilter(filters.BaseClusterFilter):
    """Remove unhealthy clusters and clusters whose breaker is open."""

    def cluster_passes(self, cluster, request):
        why = []
        if cluster.healthy is False:
            why.append('unhealthy (last probe failed)')
        if cluster.breaker_open:
            why.append('circuit breaker open')
        return ', '.join(why) or None
