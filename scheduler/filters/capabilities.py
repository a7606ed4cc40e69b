"""CapabilitiesFilter: only clusters whose backend serves the whole graph.

The request lists what its listeners, pools, members, health monitors and
L7 policies use (``('listener.protocol', 'TERMINATED_HTTPS')``, ...); a
cluster passes if its backend declares every one of them
(:meth:`backends.base.ApplianceBackend.capabilities`).

The reason names the cluster and its backend, and what it supports: when
this filter removes the last candidates, the driver shows it to the user.
"""

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
            return None
        return 'cluster %s (backend %s): %s' % (
            cluster.name, cluster.backend, ', '.join(missing))

    def filter_all(self, clusters, request):
        # The quick yes/no first; the reason only for the clusters removed.
        needs = sorted(request.needs)
        kept, removed = [], []
        for cluster in clusters:
            capabilities = cluster.capabilities
            for key, value in needs:
                if value not in capabilities.get(key, ()):
                    removed.append((cluster, self.cluster_passes(cluster,
                                                                 request)))
                    break
            else:
                kept.append(cluster)
        return kept, removed
