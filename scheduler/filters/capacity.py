"""CapacityFilter: only clusters with a free load-balancer slot.

``[cluster:<name>] max_loadbalancers`` bounds each cluster (0 = unlimited).
The scheduler works on a snapshot; the reservation that follows is a
compare-and-swap on the cluster's counter, so a slot taken meanwhile by
another API worker is detected there, not here.
"""

from scheduler import filters


class CapacityFilter(filters.BaseClusterFilter):
    """Remove full clusters."""

    def cluster_passes(self, cluster, request):
        if cluster.free == 0:
            return 'full (%d of %d load balancers)' % (
                cluster.placed, cluster.max_loadbalancers)
        return None

    def filter_all(self, clusters, request):
        # The same test as cluster_passes, inlined: with sharding off this
        # filter sees most of the fleet.
        kept = [c for c in clusters
                if not c.max_loadbalancers or c.placed < c.max_loadbalancers]
        if len(kept) == len(clusters):
            return kept, []
        return kept, [(c, self.cluster_passes(c, request)) for c in clusters
                      if c.max_loadbalancers
                      and c.placed >= c.max_loadbalancers]
