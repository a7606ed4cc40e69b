"""RecentErrorsWeigher: weigh clusters by their recent appliance errors.

The provider agent counts the failed appliance operations of each cluster
in a recent window. With the default multiplier (-1.0) a cluster that keeps
failing is used only when nothing better is left; the health filter removes
clusters that are down, this weigher avoids those that are flaky.
"""

from scheduler import weighers


class RecentErrorsWeigher(weighers.BaseClusterWeigher):
    """Failed appliance operations on the cluster, recently."""

    def weigh(self, cluster, request):
        return cluster.recent_errors
