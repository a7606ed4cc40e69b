"""The orphan sweep of one cluster (part of its worker's resync).

An *orphan* is a load balancer the cluster holds that multilb did not
place there: a node that was down during a delete kept it (still serving,
private key loaded), or a move left it on its source. Every resync
listing (``[multilb] resync_interval``) the worker hands the ids the
cluster holds to :meth:`OrphanSweep.sweep`, which removes, with
``backend.delete_loadbalancer``, each one that

* is not placed on the cluster and has no pending work there,
* has been seen for ``orphan_grace_period`` seconds, and
* is confirmed gone: placed on another cluster, or unknown to Octavia.
  A load balancer Octavia still has but the store does not place anywhere
  is never touched: the store lost it (restore the store from its
  backup); that is logged as an ERROR once.

At most ``orphan_sweep_limit`` are removed per pass; with
``orphan_action = report`` each is only logged (a WARNING per load
balancer, once). Removals are logged at WARNING with the load balancer
and the cluster.
"""

from __future__ import annotations

import logging
import time

from backends import exceptions as backend_exc
from multilb import metrics
from multilb import octavia as octavia_mod

LOG = logging.getLogger(__name__)

DELETE, REPORT = 'delete', 'report'


class OrphanSweep:
    """Remembers when each orphan was first seen; one per cluster worker."""

    def __init__(self, name, state, backend, octavia, settings):
        self.name = name
        self.state = state
        self.backend = backend
        self.octavia = octavia
        self.settings = settings
        self._seen = {}          # lb id -> monotonic time first seen
        self._said = set()       # ids already logged (report mode, lost)
        self.removed = 0         # since start (for tests and logs)

    def sweep(self, listed, placed, pending):
        """Remove the orphans among ``listed`` (ids the cluster holds).

        :param placed: ids placed on this cluster.
        :param pending: ids with pending work on this cluster.
        :returns: the ids removed in this pass.
        """
        now = time.monotonic()
        candidates = set(listed) - set(placed) - set(pending)
        self._seen = {i: self._seen.get(i, now) for i in candidates}
        self._said &= candidates
        due = sorted(i for i, first in self._seen.items()
                     if now - first >= self.settings.orphan_grace_period)
        removed = []
        for lb_id in due:
            if len(removed) >= self.settings.orphan_sweep_limit:
                LOG.info('Cluster %s: %d more orphan(s) left for the next '
                         'sweep', self.name, len(due) - len(removed))
                break
            why = self._confirmed(lb_id)
            if why is None:
                continue
            if self.settings.orphan_action == REPORT:
                if lb_id not in self._said:
                    self._said.add(lb_id)
                    LOG.warning('Load balancer %s is on cluster %s but %s; '
                                'orphan_action is "report": left in place',
                                lb_id, self.name, why)
                continue
            try:
                self.backend.delete_loadbalancer(lb_id)
            except backend_exc.BackendError as exc:
                LOG.warning('Load balancer %s on cluster %s: removing the '
                            'orphan failed (%s); next sweep retries', lb_id,
                            self.name, exc)
                continue
            LOG.warning('Load balancer %s removed from cluster %s: it was '
                        'still there but %s', lb_id, self.name, why)
            self._seen.pop(lb_id, None)
            removed.append(lb_id)
        self.removed += len(removed)
        metrics.orphans_removed(self, len(removed))
        return removed

    def outstanding(self):
        """Orphan candidates seen at the last sweep (grace period, report
        mode, or lost by the store) that are still on the cluster."""
        return len(self._seen)

    def _confirmed(self, lb_id):
        """Why ``lb_id`` is an orphan, or None to leave it alone."""
        record = self.state.get_lb(lb_id)
        if record is not None:
            if record.get('cluster') == self.name:
                return None              # placed meanwhile
            return 'it is placed on cluster %s' % record.get('cluster')
        try:
            found = self.octavia.get_loadbalancer(lb_id)
        except octavia_mod.OctaviaUnavailable as exc:
            LOG.info('Cluster %s: cannot ask Octavia about load balancer %s '
                     '(%s); sweep postponed', self.name, lb_id, exc)
            return None
        if found is None:
            return 'Octavia does not have it (deleted)'
        if lb_id not in self._said:
            self._said.add(lb_id)
            LOG.error('Load balancer %s is on cluster %s and in Octavia, but '
                      'multilb\'s state store does not place it anywhere: '
                      'the store lost it; left in place (restore the store '
                      'from its backup)', lb_id, self.name)
        return None
