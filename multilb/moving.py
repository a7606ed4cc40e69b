"""A worker's part in moves between clusters (:mod:`multilb.moves`).

:class:`MoveJobs` is mixed into :class:`multilb.worker.ClusterWorker`. A
job whose load balancer is placed on another cluster is one of:

* the **target** of a running move (a ``move`` intent): apply the whole
  graph here, verify every node holds it, switch the placement; other
  intents queued here (an Octavia failover) wait for the switch;
* the **source** after a switch (an ``evict`` intent): remove the load
  balancer from this cluster, end the move;
* work recorded on this cluster after the switch: forwarded to the load
  balancer's cluster.
"""

from __future__ import annotations

import logging
import time

from backends import base as backend_base
from backends import exceptions as backend_exc
from multilb import bindings
from multilb import exceptions
from multilb import graph as graphs
from multilb import moves as moves_mod
from multilb import octavia as octavia_mod

LOG = logging.getLogger(__name__)


class MoveJobs:
    """Needs: name, state, octavia, settings, backend, cluster, monitor,
    fence, _apply_graph, _backoff, _forget, _verify (see ClusterWorker)."""

    def elsewhere(self, lb_id, intents, record):
        """Handle the intents of a load balancer placed on another
        cluster (``record['cluster']``); see the module docstring."""
        moves = moves_mod.Moves(self.state)
        evicts = [i for i in intents if i['op'] == moves_mod.EVICT]
        if evicts:
            self._evict(moves, lb_id, evicts)
            return
        move = moves.get(lb_id)
        if move and move.get('target') == self.name and \
                move.get('phase') == moves_mod.APPLYING:
            if any(i['op'] == moves_mod.MOVE for i in intents):
                self._move(moves, lb_id, move, intents, record)
            return       # a failover waits for the switch
        stale = [i for i in intents if i['op'] == moves_mod.MOVE]
        rest = [i for i in intents if i['op'] != moves_mod.MOVE]
        if stale:        # a move that ended (failed, or restarted)
            self.state.complete(lb_id, self.name, stale)
        if rest:
            LOG.info('Load balancer %s moved from cluster %s to %s; '
                     'forwarding %d pending operation(s)', lb_id, self.name,
                     record['cluster'], len(rest))
            moves.forward(lb_id, self.name, rest, record['cluster'],
                          fence=self.fence)

    # -- target --------------------------------------------------------------

    def _move(self, moves, lb_id, move, intents, record):
        started = time.monotonic()
        age = time.time() - move.get('started_at', time.time())
        try:
            graph = self.octavia.get_loadbalancer(lb_id)
        except octavia_mod.OctaviaUnavailable as exc:
            LOG.warning('Load balancer %s: move to cluster %s waits for '
                        'Octavia: %s', lb_id, self.name, exc)
            self._backoff(lb_id)
            return
        if graph is None:
            self._abort(moves, lb_id, 'Octavia no longer has the load '
                        'balancer')
            return
        # what the source holds out stays held out
        desired = graphs.prune(graph, set(record.get('refused') or ()))
        lacking = self._lacking(desired)
        if lacking:
            self._abort(moves, lb_id, 'cluster %s (backend %s) cannot serve '
                        'it: %s' % (self.name, self.cluster.backend, lacking),
                        remove=False)
            return
        try:
            self._apply_graph(desired)
            self._verify()
            self.backend.verify_loadbalancer(desired)
        except (exceptions.Fenced, exceptions.StoreUnavailable):
            raise
        except backend_exc.BackendUnavailable as exc:
            if age < self.settings.move_timeout:
                LOG.warning('Load balancer %s: move from cluster %s to %s '
                            'not served by every node yet, will retry: %s',
                            lb_id, move['source'], self.name, exc)
                self._backoff(lb_id, getattr(exc, 'retry_after', None))
                return
            self._abort(moves, lb_id, 'cluster %s did not serve it within '
                        'move_timeout (%.0fs): %s' % (
                            self.name, self.settings.move_timeout, exc))
            return
        except Exception as exc:  # noqa: B902 - a move never ends in ERROR
            self._abort(moves, lb_id, 'cluster %s refused it: %s' % (
                self.name, exc))
            return
        new_record = dict(record, cluster=self.name)
        try:
            reserve = self._target_binds(lb_id, new_record, graph)
        except bindings.InUse as exc:
            self._abort(moves, lb_id, 'cluster %s: %s' % (self.name, exc))
            return
        if not moves.switch(lb_id, self.name, new_record, reserve,
                            fence=self.fence):
            # the load balancer or its work changed: apply again
            self._backoff(lb_id)
            return
        self._forget(lb_id)
        if self.monitor is not None:
            self.monitor.remember(lb_id, desired)
        LOG.info('Load balancer %s moved from cluster %s to %s: applied '
                 'and verified in %.3fs (%.3fs since requested); the '
                 'source removes it next', lb_id, move['source'], self.name,
                 time.monotonic() - started, age)

    def _target_binds(self, lb_id, record, graph):
        """The target's address:port reservations: ``(checks, puts)``;
        the record gets the target's ``addresses`` and ``binds``."""
        keys = bindings.bind_record(self.cluster, record, graph)
        return bindings.Bindings(self.state.kv, self.state.has_placement
                                 ).reserve_ops(lb_id, keys)

    def _lacking(self, graph):
        """What in ``graph`` this cluster's backend does not support (the
        first such object's refusal text), or None: checked before the
        target is touched, so a move to a cluster of another backend is
        refused with a reason instead of half applied."""
        return backend_base.refusal(self.cluster.backend_class.check_supported,
                                    graphs.checked_objects(graph))

    def _remove(self, lb_id):
        """Delete ``lb_id`` from this cluster; the BackendError, or None."""
        self._verify()
        try:
            self.backend.delete_loadbalancer(lb_id)
        except backend_exc.BackendError as exc:
            return exc
        return None

    def _abort(self, moves, lb_id, reason, remove=True):
        """Roll back: empty the target (unless nothing was written to it,
        ``remove=False``), give its reservation back."""
        exc = self._remove(lb_id) if remove else None
        if exc is not None:
            LOG.warning('Load balancer %s on cluster %s: cannot remove it '
                        'after a failed move (%s); the orphan sweep will',
                        lb_id, self.name, exc)
        moves.abort(lb_id, self.name, reason, fence=self.fence)
        self._forget(lb_id)
        LOG.error('Load balancer %s: move to cluster %s FAILED and was '
                  'rolled back (it stays where it was): %s', lb_id,
                  self.name, reason)

    # -- source --------------------------------------------------------------

    def _evict(self, moves, lb_id, intents):
        exc = self._remove(lb_id)
        if exc is not None:
            LOG.warning('Load balancer %s moved away from cluster %s, which '
                        'still holds it (%s); will retry', lb_id, self.name,
                        exc)
            self._backoff(lb_id, getattr(exc, 'retry_after', None))
            return
        moves.finish(lb_id, self.name, intents, fence=self.fence)
        self._forget(lb_id)
        if self.monitor is not None:
            self.monitor.forget(lb_id)
        LOG.info('Load balancer %s removed from cluster %s: its move to '
                 'cluster %s is complete', lb_id, self.name,
                 intents[0].get('target'))
