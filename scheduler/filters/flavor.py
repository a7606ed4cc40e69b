"""FlavorFilter: only the clusters the load balancer's flavor selects.

The flavor's metadata may name ``clusters``, ``cluster_tags`` and a
``backend`` type; a cluster must match every key given. A load balancer
without a flavor (empty metadata) may go to any cluster.
"""

from scheduler import filters


class FlavorFilter(filters.BaseClusterFilter):
    """Keep the clusters the flavor's metadata selects."""

    def filter_all(self, clusters, request):
        return filters.filter_by_metadata(clusters, request.flavor, 'flavor')
