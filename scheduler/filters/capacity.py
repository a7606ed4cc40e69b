"""CapacityFilter: only clusters with a free load-balancer slot (and room
for the new load balancer's listeners).

``[cluster:<name>] max_loadbalancers`` and ``max_listeners`` bound each
cluster (0 = unlimited).
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
        if (cluster.max_listeners and cluster.listeners + request.listeners
                > cluster.max_listeners):
            return 'no room for %d listener(s) (%d of %d listeners)' % (
                request.listeners, cluster.listeners, cluster.max_listeners)
        return None

    def filter_all(self, clusters, request):
        # The same test as cluster_passes, inlined: with sharding off this
        # filter sees most of the fleet.
        wanted = request.listeners
        kept = [c for c in clusters
                if (not c.max_loadbalancers
                    or c.placed < c.max_loadbalancers)
                and (not c.max_listeners
                     or c.listeners + wanted <= c.max_listeners)]
        if len(kept) == len(clusters):
            return kept, []
        kept_names = {c.name for c in kept}
        return kept, [(c, self.cluster_passes(c, request)) for c in clusters
                      if c.name not in kept_names]
