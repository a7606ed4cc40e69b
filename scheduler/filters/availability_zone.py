"""AvailabilityZoneFilter: only the clusters that serve the requested zone.

The availability zone's metadata may name ``clusters`` and ``cluster_tags``;
a cluster must match every key given. A load balancer without an
availability zone (empty metadata) may go to any cluster.
"""

from scheduler import filters


class AvailabilityZoneFilter(filters.BaseClusterFilter):
    """Keep the clusters the availability zone's metadata selects."""

    def filter_all(self, clusters, request):
        return filters.filter_by_metadata(
            clusters, request.availability_zone, 'availability zone')
