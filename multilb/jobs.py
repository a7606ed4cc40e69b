"""One load balancer's pending work (part of its cluster's worker).

:class:`LoadBalancerJobs` is mixed into :class:`multilb.worker.ClusterWorker`:
a job reads what Octavia has committed, waits until it shows what the
intents describe, applies the whole load balancer with the backend (without
the objects the cluster refused, :mod:`multilb.refused`) or deletes it, and
records the outcome and the status update in one store commit before
delivering it.
"""

from __future__ import annotations

import logging
import time

from backends import exceptions as backend_exc
from multilb import bindings
from multilb import exceptions
from multilb import graph as graphs
from multilb import moves
from multilb import octavia as octavia_mod
from multilb import refused as refused_mod
from multilb import status as statuses

LOG = logging.getLogger(__name__)


def binds(intents):
    """Reservation keys the driver made for these intents."""
    return sorted({k for i in intents for k in i.get('binds') or ()})


def describe(intents):
    return ', '.join('%s %s %s' % (i['op'], i['type'], i['id'])
                     for i in intents)


class LoadBalancerJobs:
    """Needs: name, state, octavia, settings, backend, guard, cluster,
    monitor, apply_retry_timeout, _note_error, _backoff, _forget,
    _verify, _deliver (see ClusterWorker)."""

    # -- one load balancer ---------------------------------------------------

    def process(self, lb_id, intents):
        """Bring one load balancer in line with Octavia and report."""
        record = self.state.get_lb(lb_id)
        if record is None and any(i['op'] in (moves.MOVE, moves.EVICT)
                                  for i in intents):
            record = {'id': lb_id, 'cluster': None}    # deleted meanwhile
        if record is not None and record['cluster'] != self.name:
            self.elsewhere(lb_id, intents, record)
            return
        if record is None:
            LOG.warning('Load balancer %s on cluster %s: no placement '
                        'record; dropping %s', lb_id, self.name,
                        describe(intents))
            self.state.complete(lb_id, self.name, intents)
            return
        try:
            graph = self.octavia.get_loadbalancer(lb_id)
        except octavia_mod.OctaviaUnavailable as exc:
            LOG.warning('Load balancer %s on cluster %s: Octavia '
                        'unavailable, will retry: %s', lb_id, self.name, exc)
            self._backoff(lb_id)
            return
        now = time.time()
        if graph is None:
            self._absent(lb_id, intents, record, now)
            return
        ready, dropped = self._committed(lb_id, intents, graph, now)
        if ready is None:
            return  # Octavia has not committed yet; look again next scan
        if dropped and not ready:
            self.state.complete(lb_id, self.name, dropped,
                                free=binds(dropped))
            return
        if any(i['type'] == 'loadbalancer' and i['op'] == 'delete'
               for i in ready):
            self._delete(lb_id, ready + dropped, graph, record, now)
        else:
            self._apply(lb_id, ready, dropped, graph, record, now)

    def _absent(self, lb_id, intents, record, now):
        """Octavia does not show the LB: not committed yet, or gone."""
        young = [i for i in intents if i['type'] == 'loadbalancer'
                 and i['op'] == 'create'
                 and now - i['at'] < self.settings.commit_wait_timeout]
        if young:
            return
        LOG.warning('Load balancer %s on cluster %s is not in Octavia '
                    '(create rolled back, or already deleted); releasing '
                    'its placement', lb_id, self.name)
        try:
            self.backend.delete_loadbalancer(lb_id)
        except backend_exc.BackendError as exc:
            LOG.warning('Load balancer %s on cluster %s: cleanup failed, '
                        'will retry: %s', lb_id, self.name, exc)
            self._backoff(lb_id)
            return
        self.state.complete(lb_id, self.name, intents, release=True,
                            unindex=self._known_ids(record))
        self._forget(lb_id)

    def _committed(self, lb_id, intents, graph, now):
        """Split intents into (ready, dropped); ready is None to wait."""
        ready, dropped = [], []
        for intent in intents:
            if graphs.shows_intent(graph, intent):
                ready.append(intent)
                continue
            if now - intent['at'] < self.settings.commit_wait_timeout:
                return None, None
            if intent['op'] == 'create' or (
                    intent['op'] == 'batch' and not graphs.shows_members(
                        graph, intent)):
                LOG.warning('Load balancer %s on cluster %s: %s never '
                            'appeared in Octavia (rolled back); dropping it',
                            lb_id, self.name, describe([intent]))
                dropped.append(intent)
            else:
                LOG.warning('Load balancer %s on cluster %s: %s not visible '
                            'in Octavia after %.0fs; applying what is '
                            'committed', lb_id, self.name,
                            describe([intent]),
                            self.settings.commit_wait_timeout)
                ready.append(intent)
        return ready, dropped

    def _retry_or_fail(self, lb_id, intents, exc, now):
        """True if a transient failure should be retried later."""
        oldest = min(i['at'] for i in intents)
        if (isinstance(exc, backend_exc.BackendUnavailable)
                and now - oldest < self.apply_retry_timeout):
            LOG.warning('Load balancer %s on cluster %s: cluster '
                        'unavailable, will retry %s: %s', lb_id, self.name,
                        describe(intents), exc)
            self._backoff(lb_id, getattr(exc, 'retry_after', None))
            return True
        LOG.error('Load balancer %s on cluster %s: %s failed: %s', lb_id,
                  self.name, describe(intents), exc)
        return False

    def _attempt(self, lb_id, intents, now, write):
        """Run ``write()`` (a change of the cluster).

        :returns: ``(True, its result)``; ``(False, None)`` when it failed
            for good (the intents end in ERROR); None when it is retried
            later (nothing to record now).
        :raises Fenced, StoreUnavailable: not the cluster's failure.
        """
        try:
            return True, write()
        except (exceptions.Fenced, exceptions.StoreUnavailable):
            raise               # not the cluster's failure: nothing to report
        except Exception as exc:  # noqa: B902 - any failure ends in ERROR
            self._note_error()
            if self._retry_or_fail(lb_id, intents, exc, now):
                return None
            return False, None

    def _apply_graph(self, desired):
        # defence in depth: the API refused these already
        self.guard.check_graph(desired, self.cluster.member_networks)
        self._verify()
        self.backend.apply_loadbalancer(desired)

    def _apply(self, lb_id, intents, dropped, graph, record, now):
        gone = statuses.deleting(intents, graph, record)
        started = time.monotonic()
        outcome = self._attempt(lb_id, intents, now, lambda: refused_mod.apply(
            self._apply_graph, graph, intents, gone, record,
            (lb_id, self.name)))
        if outcome is None:
            return
        ok, applied = outcome
        desired, held, refused = applied if ok else (None, set(), set())
        observes = self.backend.observes_health()
        sent = self.state.get_sent(lb_id) if any(
            i['op'] == 'failover' for i in intents) else None
        status = statuses.for_intents(intents, graph, record, ok,
                                      observes=observes, sent=sent)
        if ok and observes and self.monitor is not None:
            status = self.monitor.overlay(status, desired)
        # Index what Octavia has (objects in ERROR or held out included:
        # the user may still update or delete them), forget what was
        # deleted.
        kept = graphs.prune(graph, gone) if ok else graph
        present = graphs.object_ids(kept)
        indexed = set(record.get('indexed', []))
        new_record = dict(record, indexed=sorted(present))
        if ok:
            status = statuses.refuse(
                status, refused, graph,
                healed=refused_mod.healed(record, desired, held | refused),
                held=held)
            new_record['pools'] = graphs.pool_members(kept)
            new_record['listeners'] = len(kept['listeners'])
            new_record['locks'] = statuses.locks(kept)
            new_record['applied'] = True
            new_record['refused'] = sorted(held | refused)
        free = self._rebind(new_record, kept, intents + dropped)
        key = self.state.complete(
            lb_id, self.name, intents + dropped, status=status,
            record=new_record,
            index={o: t for o, t in present.items() if o not in indexed},
            unindex=sorted(indexed - set(present)) if ok else (),
            free=free)
        self._forget(lb_id)
        if ok and self.monitor is not None:
            self.monitor.remember(lb_id, desired)
        LOG.info('Load balancer %s on cluster %s: %s %s in %.3fs', lb_id,
                 self.name, describe(intents),
                 ('applied without %d refused object(s)' % len(
                     new_record['refused']) if ok and new_record['refused']
                  else 'applied') if ok else 'FAILED',
                 time.monotonic() - started)
        self._deliver(key)

    def _delete(self, lb_id, intents, graph, record, now):
        def delete():
            self._verify()
            self.backend.delete_loadbalancer(lb_id)

        outcome = self._attempt(lb_id, intents, now, delete)
        if outcome is None:
            return
        ok, _ = outcome
        status = statuses.for_intents(intents, graph, record, ok,
                                      observes=self.backend.observes_health())
        if ok:
            unindex = set(graphs.object_ids(graph)) | self._known_ids(record)
            for intent in intents:
                unindex |= set(intent.get('tree', {}))
            key = self.state.complete(lb_id, self.name, intents,
                                      status=status, release=True,
                                      unindex=sorted(unindex))
            LOG.info('Load balancer %s deleted from cluster %s', lb_id,
                     self.name)
            if self.monitor is not None:
                self.monitor.forget(lb_id)
        else:
            key = self.state.complete(lb_id, self.name, intents,
                                      status=status, record=record)
        self._forget(lb_id)
        self._deliver(key)

    def _rebind(self, record, graph, intents):
        """Record the address:port reservations of ``graph``'s listeners
        in ``record``; return the keys of listeners it no longer has."""
        known = set(record.get('binds') or {}) | set(binds(intents))
        keys = bindings.bind_record(self.cluster, record, graph,
                                    refused_keeps=True)
        return sorted(known - set(keys))

    @staticmethod
    def _known_ids(record):
        ids = {record['id']} | set(record.get('pools', {}))
        ids |= set(record.get('indexed', []))
        for members in record.get('pools', {}).values():
            ids |= set(members)
        return ids
