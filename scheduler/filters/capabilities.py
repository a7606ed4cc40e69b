"""CapabilitiesFilter: only clusters whose backend serves the whole graph.

The request lists what its listeners, pools, members, health monitors and
L7 policies use (``('listener.protocol', 'TERMINATED_HTTPS')``, ...); a
cluster passes if its backend declares every one of them
(:meth:`backends.base.ApplianceBackend.capabilities`).

Then each object of the graph goes through the backend's own
``check_supported`` (:attr:`ClusterState.check_supported`), which also
refuses what the sets cannot express: a Caddy cluster passes no listener
with a ``connection_limit``. Without it, a load balancer created with its
whole graph would be placed on a cluster that then refuses that object
when the agent applies it (ERROR), while the same object created on its
own is refused in the API request. Clusters of one backend give one
answer: each backend's check runs once per request.

The reason names the cluster and its backend, and what it supports: when
this filter removes the last candidates, the driver shows it to the user.
"""

from backends import base as backend_base
from scheduler import filters


class CapabilitiesFilter(filters.BaseClusterFilter):
    """Remove the clusters that lack something the load balancer uses."""

    def cluster_passes(self, cluster, request):
        missing = []
        for key, value in sorted(request.needs):
            supported = cluster.capabilities.get(key, frozenset())
            if value not in supported:
                missing.append('%s %s is not supported (supported: %s)' % (
                    key.replace('.', ' '), value,
                    ', '.join(sorted(supported)) or 'none'))
        if not missing:
            refused = _refusal(cluster.check_supported, request.objects)
            if refused:
                missing.append(refused)
        if not missing:
            return None
        return 'cluster %s (backend %s): %s' % (
            cluster.name, cluster.backend, ', '.join(missing))

    def filter_all(self, clusters, request):
        # The quick yes/no first; the reason only for the clusters removed.
        needs = sorted(request.needs)
        refusals = {}          # check_supported -> its refusal, or None
        kept, removed = [], []
        for cluster in clusters:
            capabilities = cluster.capabilities
            for key, value in needs:
                if value not in capabilities.get(key, ()):
                    removed.append((cluster, self.cluster_passes(cluster,
                                                                 request)))
                    break
            else:
                check = cluster.check_supported
                if check not in refusals:
                    refusals[check] = _refusal(check, request.objects)
                if refusals[check]:
                    removed.append((cluster, 'cluster %s (backend %s): %s' % (
                        cluster.name, cluster.backend, refusals[check])))
                else:
                    kept.append(cluster)
        return kept, removed


def _refusal(check_supported, objects):
    """The first object's refusal text, or None (also without a check)."""
    if check_supported is None:
        return None
    return backend_base.refusal(check_supported, objects)
