"""Clusters that left the configuration while holding load balancers.

An operator removes a cluster from ``[multilb] enabled_clusters`` (retired
hardware, a cluster that will never come back) while load balancers are
still placed on it. Their tenants must still be able to delete them and
free their quota, and status updates already recorded for the cluster must
still reach Octavia. Everything else on such a load balancer is refused at
the API with a message saying it can only be deleted.

A *departed* cluster is one the store still holds load balancers or
undelivered status updates of, that is neither configured nor disabled by
a configuration error (a broken ``[cluster:NAME]`` section is to be fixed,
and its appliance still serves: its load balancers wait for the fix). The
agents share departed clusters like configured ones; the owner runs a
:class:`multilb.agent.DepartedWorker` (with :class:`DepartedBackend`),
whose deletes release the placement and capacity and report DELETED
**without touching the appliance** (multilb no longer knows how to reach
it) and log a WARNING that the appliance may still hold the load balancer.
The worker ends once nothing is left.
"""

from __future__ import annotations

import logging

from backends import base
from backends import exceptions as backend_exc
from backends import types as backend_types
from multilb.conf import clusters as cluster_conf

LOG = logging.getLogger(__name__)

BACKEND = 'departed'


def names(state, cluster_set):
    """Departed cluster names: holding load balancers or undelivered
    status updates in the store, not in ``cluster_set`` (valid or not).

    :raises multilb.exceptions.StoreUnavailable: as the store does.
    """
    known = set(cluster_set.clusters) | set(cluster_set.errors)
    found = {name for name, (placed, _version)
             in state.cluster_counts().items() if placed > 0}
    found |= {entry['cluster'] for entry in state.outbox_entries()}
    return found - known


def config(name):
    """The stand-in configuration a departed cluster's worker runs with."""
    return cluster_conf.ClusterConfig(
        name=name, backend=BACKEND, max_loadbalancers=0,
        description='no longer in [multilb] enabled_clusters',
        backend_class=DepartedBackend)


class DepartedBackend(base.ApplianceBackend):
    """Stands in for the backend of a departed cluster: nothing reaches
    the appliance. Deletes succeed (with a WARNING), applies are refused."""

    def apply_loadbalancer(self, graph):
        raise backend_exc.BackendRejected(
            'cluster %s is no longer in [multilb] enabled_clusters: its '
            'load balancers can only be deleted' % self.cluster.name)

    def delete_loadbalancer(self, loadbalancer_id):
        LOG.warning('Load balancer %s on cluster %s: the cluster is no '
                    'longer configured, so multilb released the load '
                    'balancer without removing it from the appliance; the '
                    'appliance may still hold (and serve) it',
                    loadbalancer_id, self.cluster.name)

    def probe(self):
        return backend_types.ClusterHealth(
            reachable=False, detail='not in [multilb] enabled_clusters')

    def list_loadbalancer_ids(self):
        raise backend_exc.BackendUnavailable(
            'cluster %s is no longer configured' % self.cluster.name)
