"""TenantAffinityWeigher: weigh clusters by the requesting project's load
balancers already on them.

Off by default (multiplier 0). A positive
``[multilb_scheduler] tenant_affinity_weight_multiplier`` keeps each
project's load balancers together; a negative one spreads each project over
as many clusters as possible, so that one broken cluster takes down fewer
of its load balancers.
"""

from scheduler import weighers


class TenantAffinityWeigher(weighers.BaseClusterWeigher):
    """Load balancers of the requesting project on the cluster."""

    def weigh(self, cluster, request):
        return cluster.project_placed
