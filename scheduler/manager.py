"""Orders the clusters that can take a new load balancer, best first.

Pure: a function of cluster snapshots and the request, no I/O. The caller
reserves capacity on the first cluster of the list and moves to the next
one if that reservation loses a race.
"""

from __future__ import annotations

import logging

from multilb import exceptions

LOG = logging.getLogger(__name__)


class ClusterScheduler:
    """Capacity filter, then least-loaded first."""

    def select(self, request, clusters):
        """Return the clusters that can take ``request``, best first.

        :raises multilb.exceptions.NoValidCluster: with one reason per
            cluster that was dropped.
        """
        reasons, candidates = [], []
        for cluster in clusters:
            if cluster.free == 0:
                reasons.append('%s: full (%d of %d load balancers)' % (
                    cluster.name, cluster.placed, cluster.max_loadbalancers))
            else:
                candidates.append(cluster)
        if not candidates:
            LOG.warning('No cluster for load balancer %s: %s',
                        request.loadbalancer_id, '; '.join(reasons)
                        or 'no cluster is enabled')
            raise exceptions.NoValidCluster(
                'no cluster can take load balancer %s' %
                request.loadbalancer_id, reasons)
        candidates.sort(key=lambda c: (c.placed, c.name))
        return candidates
