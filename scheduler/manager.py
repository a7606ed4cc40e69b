"""Chooses the cluster of a new load balancer: filters, then weighers.

nova's filter scheduler on multilb's terms: the enabled filters remove the
clusters that cannot take the request, the enabled weighers order the rest,
and the pick is random among the best few. :meth:`ClusterScheduler.select`
is pure (cluster snapshots and the request in, an ordered list out, no
I/O); the caller reserves capacity on the first cluster and decides again if
that reservation loses a race.
"""

from __future__ import annotations

import collections
import logging
import random
import typing

from oslo_config import cfg

from multilb.conf import scheduler as scheduler_conf
from multilb import exceptions
from multilb import registry
from scheduler import cluster_state
from scheduler import weighers

LOG = logging.getLogger(__name__)

ClusterState = cluster_state.ClusterState
PlacementRequest = cluster_state.PlacementRequest

_NAMES_LOGGED = 10
"""Clusters named per reason in the no-valid-cluster warning."""


def _options(conf):
    """The validated ``[multilb_scheduler]`` group (defaults if no conf)."""
    conf = cfg.ConfigOpts() if conf is None else conf
    scheduler_conf.register_opts(conf)
    group = getattr(conf, scheduler_conf.GROUP)
    for opt in scheduler_conf.opts:
        try:
            getattr(group, opt.dest)
        except ValueError as exc:   # oslo checks values on first access
            raise exceptions.ConfigError('[%s] %s: %s' % (
                scheduler_conf.GROUP, opt.name, exc)) from None
    return group


def _plugins(namespace, names, option):
    option = '[%s] %s' % (scheduler_conf.GROUP, option)
    return registry.plugin_classes(namespace, names, option)


class ClusterScheduler:
    """Filters and weighs clusters for new load balancers.

    Built once per process (by :class:`multilb.placement.Placer`): loading
    the plugins reads entry points, which is too slow for every request.
    """

    def __init__(self, conf: typing.Optional[cfg.ConfigOpts] = None) -> None:
        """Load the enabled filters and weighers, in configured order.

        :param conf: the service's ConfigOpts; None for the defaults.
        :raises multilb.exceptions.ConfigError: an option is invalid, or
            names a filter or weigher that is not installed (the message
            lists the installed ones) or does not load.
        """
        options = _options(conf)
        self.filters = [
            (name, plugin(options)) for name, plugin in _plugins(
                registry.FILTERS_NAMESPACE, options.enabled_filters,
                'enabled_filters')]
        self.weighers = [
            (name, plugin(options)) for name, plugin in _plugins(
                registry.WEIGHERS_NAMESPACE, options.enabled_weighers,
                'enabled_weighers')]
        self.subset_size = options.subset_size
        self._random = random.Random()
        LOG.info('Cluster scheduler: filters %s; weighers %s',
                 ', '.join(name for name, _f in self.filters) or 'none',
                 ', '.join('%s (x%s)' % (name, w.multiplier)
                           for name, w in self.weighers) or 'none')

    def select(self, request: PlacementRequest,
               clusters: typing.Sequence[ClusterState]
               ) -> list[ClusterState]:
        """Return the clusters that can take ``request``, chosen one first.

        The first cluster is picked at random among the ``subset_size``
        best weighed and every cluster that ties with the best; the others
        follow by decreasing weight, then name.

        :raises multilb.exceptions.NoValidCluster: with one reason per
            cluster that was dropped and the filter that dropped the last.
        """
        candidates = list(clusters)
        history = []
        for name, flt in self.filters:
            if not candidates:
                break
            start = len(candidates)
            candidates, removed = flt.filter_all(candidates, request)
            LOG.debug('Filter %s: (start: %d, end: %d)', name, start,
                      len(candidates))
            history.append((name, start, removed))
        if not candidates:
            raise self._no_valid_cluster(request, len(clusters), history)
        if len(candidates) == 1:
            return candidates
        return self._order(request, candidates)

    def _order(self, request, candidates):
        totals = [0.0] * len(candidates)
        for name, weigher in self.weighers:
            multiplier = weigher.weight_multiplier(request)
            if not multiplier:
                continue
            raw = weigher.weigh_all(candidates, request)
            normalised = weighers.normalize(raw, weigher.minval,
                                            weigher.maxval)
            totals = [total + multiplier * value
                      for total, value in zip(totals, normalised)]
            if LOG.isEnabledFor(logging.DEBUG):
                LOG.debug('Weigher %s (x%s) for load balancer %s: %s', name,
                          multiplier, request.loadbalancer_id, ', '.join(
                              '%s=%s->%.3f' % (c.name, r, n) for c, r, n in
                              zip(candidates, raw, normalised)))
        ranked = [index for _weight, _name, index in sorted(zip(
            [-total for total in totals],
            [cluster.name for cluster in candidates],
            range(len(candidates))))]
        best = totals[ranked[0]]
        tied = 1
        while tied < len(ranked) and totals[ranked[tied]] == best:
            tied += 1
        # NOTE: API workers placing at the same moment read the same
        # counters; a random pick among the best few (and always among
        # equal-best, e.g. a new fleet of identical clusters) makes them
        # race for the same counter less often (nova's host_subset_size).
        chosen = self._random.choice(ranked[:max(tied, self.subset_size)])
        LOG.debug('Weighed %d clusters for load balancer %s: chose %s '
                  '(weight %.3f, best %.3f)', len(candidates),
                  request.loadbalancer_id, candidates[chosen].name,
                  totals[chosen], best)
        return [candidates[chosen]] + [candidates[i] for i in ranked
                                       if i != chosen]

    def _no_valid_cluster(self, request, total, history):
        reasons = [(name, cluster.name, why)
                   for name, _start, removed in history
                   for cluster, why in removed]
        last = history[-1][0] if history else None
        LOG.warning('No cluster can take load balancer %s of project %s '
                    '(%d enabled): %s', request.loadbalancer_id,
                    request.project_id, total,
                    '; '.join(_describe(step) for step in history)
                    or 'no cluster is enabled')
        text = '; '.join('%s: %s: %s' % reason for reason in reasons) \
            or 'no cluster is enabled'
        return exceptions.NoValidCluster(
            'no cluster can take load balancer %s: %s' % (
                request.loadbalancer_id, text), reasons, last_filter=last)


def _describe(step):
    """``Filter: kept m of n, removed k (why: a, b, ...)`` for the log."""
    name, start, removed = step
    text = '%s kept %d of %d' % (name, start - len(removed), start)
    if not removed:
        return text
    by_reason = collections.defaultdict(list)
    for cluster, why in removed:
        by_reason[why].append(cluster.name)
    groups = []
    for why, names in by_reason.items():
        shown = ', '.join(names[:_NAMES_LOGGED])
        if len(names) > _NAMES_LOGGED:
            shown += ' and %d more' % (len(names) - _NAMES_LOGGED)
        groups.append('%s: %s' % (why, shown))
    return '%s, removed %d (%s)' % (text, len(removed), '; '.join(groups))
