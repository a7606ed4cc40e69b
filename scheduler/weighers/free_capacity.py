"""FreeCapacityWeigher: weigh clusters by their free load-balancer slots.

The default is to spread load balancers: the cluster with the most free
slots wins. To pack them instead (fill a cluster before using an emptier
one), set ``[multilb_scheduler] free_capacity_weight_multiplier`` to a
negative value, or give a flavor ``placement: pack``, which reverses the
multiplier's sign for that flavor's load balancers only.

An unlimited cluster (``max_loadbalancers = 0``) has no free-slot count of
its own. It counts as one slot larger than the largest candidate: the
largest ``max_loadbalancers`` of the limited candidates, or the most load
balancers placed on any candidate if that is more. Unlimited clusters then
compete with limited ones by how many load balancers they hold, spread
among themselves by least placed, and always have at least one free slot.
"""

from scheduler import weighers


class FreeCapacityWeigher(weighers.BaseClusterWeigher):
    """Free slots; positive multiplier spreads, negative packs."""

    def weight_multiplier(self, request):
        if request.flavor.get('placement') == 'pack':
            return -self.multiplier
        return self.multiplier

    def weigh(self, cluster, request):
        return self.weigh_all([cluster], request)[0]

    def weigh_all(self, clusters, request):
        ceiling = 1 + max(max(c.max_loadbalancers for c in clusters),
                          max(c.placed for c in clusters))
        return [(c.max_loadbalancers or ceiling) - c.placed
                for c in clusters]
