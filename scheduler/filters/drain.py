"""DrainFilter: no new load balancers on drained clusters.

An operator drains a cluster (``multilb-manage cluster drain``) before
maintenance or retirement; its existing load balancers keep working.
"""

from scheduler import filters


class DrainFilter(filters.BaseClusterFilter):
    """Remove the clusters an operator drained."""

    def cluster_passes(self, cluster, request):
        return 'draining' if cluster.draining else None
