"""Orders the clusters that can take a new load balancer, best first.

Pure: a function of cluster snapshots and the request, no I/O. The caller
reserves capacity on the first cluster of the list and decides again if that
reservation loses a race.
"""

from __future__ import annotations

import logging

from multilb import exceptions

LOG = logging.getLogger(__name__)


def _unsupported(cluster, request):
    missing = []
    for key, value in sorted(request.needs):
        supported = cluster.capabilities.get(key, frozenset())
        if value not in supported:
            missing.append('%s %s is not supported (supported: %s)' % (
                key.replace('.', ' '), value,
                ', '.join(sorted(supported)) or 'none'))
    if not missing:
        return None
    return 'cluster %s (backend %s): %s' % (cluster.name, cluster.backend,
                                            ', '.join(missing))


class ClusterScheduler:
    """Capabilities, drain and capacity filters, then least-loaded first."""

    def __init__(self, conf=None):
        self.conf = conf

    def select(self, request, clusters):
        """Return the clusters that can take ``request``, best first.

        :raises multilb.exceptions.NoValidCluster: with one reason per
            cluster that was dropped and the filter that dropped the last.
        """
        reasons, candidates, last = [], list(clusters), None
        checks = (
            ('CapabilitiesFilter', lambda c: _unsupported(c, request)),
            ('DrainFilter', lambda c: 'draining' if c.draining else None),
            ('CapacityFilter', lambda c: (
                'full (%d of %d load balancers)' % (
                    c.placed, c.max_loadbalancers) if c.free == 0 else None)),
        )
        for name, why in checks:
            kept = []
            for cluster in candidates:
                reason = why(cluster)
                if reason:
                    reasons.append((name, cluster.name, reason))
                else:
                    kept.append(cluster)
            if candidates and not kept:
                last = name
            candidates = kept
        if not candidates:
            text = '; '.join('%s: %s: %s' % r for r in reasons) \
                or 'no cluster is enabled'
            LOG.warning('No cluster for load balancer %s: %s',
                        request.loadbalancer_id, text)
            raise exceptions.NoValidCluster(
                'no cluster can take load balancer %s: %s' % (
                    request.loadbalancer_id, text), reasons, last_filter=last)
        candidates.sort(key=lambda c: (c.placed, c.name))
        return candidates
