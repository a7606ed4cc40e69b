"""Health probing and resync of one cluster (part of its worker).

:class:`ProbingMixin` is mixed into :class:`multilb.worker.ClusterWorker`:
every ``health_interval`` the scan thread probes the cluster, records the
result for the scheduler, opens the circuit breaker when no node answers
and queues a re-apply (``sync`` intents) of load balancers the cluster
lost, and sweeps the orphans it holds (:mod:`multilb.reconcile`), off the
scan thread.
"""

from __future__ import annotations

import logging
import time

from backends import exceptions as backend_exc
from backends import transport
from multilb import exceptions
from multilb import fencing
from multilb import metrics

LOG = logging.getLogger(__name__)

ERROR_WINDOW = 300.0   # seconds of appliance failures the scheduler weighs


class ProbingMixin:
    """Needs: name, state, backend, breaker, settings, _lock, _errors,
    _pool, _not_before, _next_probe, _next_resync, _last_reachable,
    _resyncing, fence, orphans, sweep, _verify, fence_lost (see
    ClusterWorker)."""

    def probe(self, force=False):
        """Probe the cluster every ``health_interval`` and record it.

        The scheduler reads the record (with the count of appliance failures
        in the last ``ERROR_WINDOW`` seconds) from the store: a cluster that
        does not answer gets no new load balancers.
        """
        now = time.time()
        if not force and now < self._next_probe:
            return
        self._next_probe = now + self.settings.health_interval
        started = time.monotonic()
        health = self.backend.probe()
        metrics.probed(self, time.monotonic() - started, health.reachable)
        breaker = self.breaker
        if (breaker is not None and not health.reachable
                and breaker.state == transport.BREAKER_CLOSED):
            breaker.trip('probe: %s' % health.detail)
        with self._lock:
            self._errors = [t for t in self._errors
                            if now - t < ERROR_WINDOW]
            recent = len(self._errors)
        if health.reachable != self._last_reachable:
            log = LOG.info if health.reachable else LOG.warning
            log('Cluster %s is %s: %s', self.name,
                'reachable' if health.reachable else 'UNREACHABLE',
                health.detail)
            self._last_reachable = health.reachable
        record = {
            'reachable': health.reachable, 'detail': health.detail,
            'at': now, 'recent_errors': recent,
            'breaker_open': bool(breaker) and (
                breaker.state != transport.BREAKER_CLOSED)}
        if self.sweep is not None:
            self.sweep.publish(self.name, record)   # one commit per agent
        else:
            self.state.set_health(self.name, record)
        if breaker is not None and breaker.state != \
                transport.BREAKER_CLOSED:
            breaker.refresh()
        if health.reachable:
            listing = now >= self._next_resync
            if listing:
                self._next_resync = now + self.settings.resync_interval
            if self.fence is not None:
                self._repair_late_writes()
            if listing or health.resync or health.resync_ids:
                self._start_resync(health, listing)

    def _repair_late_writes(self):
        """Re-apply the load balancers an agent that lost the cluster wrote
        to it late (:mod:`multilb.fencing`): the newest graph wins. The
        agent's sweep finds them for all its clusters at once; without
        one, the worker reads its own."""
        kv = self.state.kv
        found = (self.sweep.take_late(self.name) if self.sweep is not None
                 else fencing.late_writes(kv, self.name))
        for key, lb_id, agent in found:
            self._verify()
            record = self.state.get_lb(lb_id)
            if record and record.get('cluster') == self.name and \
                    record.get('applied'):
                LOG.warning('Load balancer %s on cluster %s: agent %s wrote '
                            'to the cluster after losing it; re-applying '
                            'it', lb_id, self.name, agent)
                self.state.add_sync(lb_id, record)
                metrics.reapplied(self, metrics.LATE_WRITE)
            kv.commit(deletes=[key])

    def _breaker_changed(self, record):
        """Work waiting for the cluster resumes as soon as it closes."""
        if record['state'] == transport.BREAKER_CLOSED:
            with self._lock:
                self._not_before.clear()

    def _start_resync(self, health, listing):
        """Resync off the scan thread (a listing may wait on a node that
        just hung: the next probes must still run); one at a time."""
        if self._pool is None:
            self._resync(health, listing)     # driven synchronously (tests)
            return
        with self._lock:
            if self._resyncing:
                return
            self._resyncing = True

        def run():
            try:
                self._resync(health, listing)
            except exceptions.Fenced as exc:
                self.fence_lost(exc)
            except exceptions.StoreUnavailable as exc:
                LOG.warning('Cluster %s: resync postponed: %s', self.name,
                            exc)
            except Exception:
                LOG.exception('Cluster %s: resync failed', self.name)
            finally:
                with self._lock:
                    self._resyncing = False
        self._pool.submit(run)

    def _resync(self, health, listing=True):
        """Queue a re-apply of load balancers the cluster lost; sweep the
        orphans it holds (:mod:`multilb.reconcile`).

        All of them when the backend says so (a node was stale); else those
        a node missed or holds differently (``resync_ids``) and, when
        ``listing``, those missing from every node. Only load balancers
        placed here, applied once and without pending work (that work
        applies the whole load balancer anyway); the re-apply reports
        nothing to Octavia. The ids listed that are not placed here go to
        the orphan sweep.
        """
        self._verify()              # no write for an agent that lost it
        placed = set(self.state.cluster_lb_ids(self.name))
        pending = set(self.state.pending(self.name))
        listed = None
        if listing:
            try:
                listed = self.backend.list_loadbalancer_ids()
            except backend_exc.BackendError as exc:
                LOG.warning('Cluster %s: cannot list its load balancers: '
                            '%s', self.name, exc)
        if health.resync:
            expected = set(placed)
        else:
            expected = set(health.resync_ids) & placed
            if listed is not None:
                expected |= placed - listed
        expected -= pending
        for lb_id in sorted(expected):
            record = self.state.get_lb(lb_id)
            if not record or not record.get('applied'):
                continue
            LOG.warning('Load balancer %s on cluster %s is missing from the '
                        'cluster (%s); re-applying it', lb_id, self.name,
                        health.detail)
            self.state.add_sync(lb_id, record)
            metrics.reapplied(self, metrics.MISSING)
        if listed is not None and self.orphans is not None:
            self.orphans.sweep(listed, placed, pending)
