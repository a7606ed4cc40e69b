"""Scheduler filters: which clusters may take a new load balancer.

A filter is a class registered in the ``multilb.scheduler.filters``
entry-point group under its class name, and enabled, in order, by
``[multilb_scheduler] enabled_filters``.
"""

from __future__ import annotations

import typing

from scheduler import cluster_state

ClusterState = cluster_state.ClusterState
PlacementRequest = cluster_state.PlacementRequest
Removed = list[tuple[ClusterState, str]]


class BaseClusterFilter:
    """Decide which clusters may take a new load balancer.

    :class:`scheduler.manager.ClusterScheduler` builds one instance per
    enabled filter when the process starts, and calls it in the API request
    of every load balancer create, once per placement attempt, with the
    clusters the previous filters kept.

    A filter is pure: it decides from its arguments and the options it read
    in ``__init__`` only. No I/O, no clock, no randomness, no state kept
    between calls, and it never changes the clusters or the request (they
    are frozen). Explaining a refusal is part of the job: every cluster a
    filter removes comes with a short reason that an operator reads in the
    log and in the error of a refused load balancer, so it says what is
    wrong with *this* cluster (``draining``, ``full (3 of 3 load
    balancers)``).

    Subclasses override :meth:`cluster_passes` when each cluster can be
    judged alone, or :meth:`filter_all` when the decision depends on the
    other candidates (or to judge a thousand clusters faster).
    """

    def __init__(self, options) -> None:
        """:param options: the ``[multilb_scheduler]`` option group."""
        self.options = options

    def cluster_passes(self, cluster: ClusterState,
                       request: PlacementRequest) -> typing.Optional[str]:
        """Judge one cluster.

        :returns: None if ``cluster`` may take ``request``, otherwise a
            short reason, without the cluster's name.
        """
        raise NotImplementedError

    def filter_all(self, clusters: typing.Sequence[ClusterState],
                   request: PlacementRequest
                   ) -> tuple[list[ClusterState], Removed]:
        """Judge every candidate.

        :param clusters: the candidates, in the scheduler's order.
        :returns: ``(kept, removed)``: the clusters that pass, in the order
            given, and ``[(cluster, reason), ...]`` for the others.
        """
        kept, removed = [], []
        for cluster in clusters:
            why = self.cluster_passes(cluster, request)
            if why is None:
                kept.append(cluster)
            else:
                removed.append((cluster, why))
        return kept, removed


def filter_by_metadata(clusters, metadata, source):
    """Keep the clusters that flavor or availability-zone metadata selects.

    The keys, all optional, must all match: ``clusters`` (names),
    ``cluster_tags`` (the cluster carries every tag) and ``backend``.

    :param source: what the metadata belongs to, for the reasons
        (``flavor``, ``availability zone``).
    :returns: ``(kept, removed)`` as :meth:`BaseClusterFilter.filter_all`.
    """
    names = frozenset(metadata.get('clusters') or ())
    tags = frozenset(metadata.get('cluster_tags') or ())
    backend = metadata.get('backend')
    if not (names or tags or backend):
        return list(clusters), []
    kept, removed = [], []
    reasons = {}    # removed clusters mostly share a reason: format it once
    for cluster in clusters:
        if ((not names or cluster.name in names)
                and tags <= cluster.tags
                and (not backend or cluster.backend == backend)):
            kept.append(cluster)
            continue
        key = (bool(names) and cluster.name not in names, cluster.tags,
               cluster.backend)
        why = reasons.get(key)
        if why is None:
            why = reasons[key] = _mismatch(key, names, tags, backend,
                                           source)
        removed.append((cluster, why))
    return kept, removed


def _mismatch(key, names, tags, backend, source):
    outside, cluster_tags, cluster_backend = key
    why = []
    missing = tags - cluster_tags
    if outside:
        why.append("not one of the %s's clusters (%s)" % (
            source, ', '.join(sorted(names))))
    if missing:
        why.append("lacks the %s's tag(s) %s" % (
            source, ', '.join(sorted(missing))))
    if backend and cluster_backend != backend:
        why.append('backend %s, the %s requires %s' % (
            cluster_backend, source, backend))
    return '; '.join(why)
