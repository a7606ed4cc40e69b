"""Moves of a load balancer between clusters, make-before-break.

A move is requested by ``multilb-manage lb move`` / ``cluster evacuate``
(or by an Octavia failover of a load balancer whose cluster is draining or
broken, :mod:`multilb.driver`) and performed by the agent that owns the
*target* cluster (it has Octavia's sockets, the TLS material and the
target's backend; the CLI has none of these)::

    start    one commit: move/<lb> (phase "applying"), the target's
             capacity reserved (its counters + 1), a "move" intent queued
             on the target
    apply    the target's worker applies the whole graph from Octavia to
             the target and verifies that every node of the target holds
             it (backend.verify_loadbalancer); the source keeps serving
    switch   one commit: the placement record and marker, both capacity
             and listener counters, the address:port reservations, the
             pending intents and the undelivered status updates of the
             load balancer all go to the target; an "evict" intent is
             queued on the source; move/<lb> phase "evicting"
    evict    the source's worker removes the load balancer from the source
             and deletes move/<lb>

Nothing is reported to Octavia: its view of the load balancer (statuses,
``updated_at``) does not change. Every step is idempotent and resumes
after an agent restart from what the store holds; before the switch a
failure rolls back (:meth:`Moves.abort`: the target is emptied, its
reservation given back, move/<lb> phase "failed" with the reason), after
it the move only finishes. A user change recorded on the source while the
move runs is applied there (the source still serves), or forwarded to the
target when it arrives after the switch; a completion of the source's
that races the switch is refused (:class:`multilb.exceptions.Moved`) and
its work is done again by the target, which reports it.
"""

from __future__ import annotations

import json
import logging
import time

from multilb import keys
from multilb import state as state_mod

LOG = logging.getLogger(__name__)

APPLYING, EVICTING, FAILED = 'applying', 'evicting', 'failed'
MOVE, EVICT = 'move', 'evict'
PREFIX = 'move/'
_ATTEMPTS = 20


def move_key(lb_id):
    return PREFIX + lb_id


def _dump(value):
    return json.dumps(value, sort_keys=True, separators=(',', ':'))


def _counter(kv, key):
    entry = kv.get(key)
    return (int(entry.value), entry.version) if entry else (0, None)


class Moves:
    """The store side of moves; used by the CLI, the driver and the
    workers of the source and the target."""

    def __init__(self, state):
        self.state = state
        self.kv = state.kv

    # -- reads ---------------------------------------------------------------

    def get(self, lb_id):
        entry = self.kv.get(move_key(lb_id))
        return json.loads(entry.value) if entry else None

    def all(self):
        """``{lb id: move record}`` of every move not yet cleaned up."""
        return {e.key[len(PREFIX):]: json.loads(e.value)
                for e in self.kv.get_prefix(PREFIX)}

    # -- start (CLI, driver) ---------------------------------------------

    def start(self, lb_id, target, limit, by, extra_intents=(), reason=''):
        """Reserve a slot on ``target`` and queue the move, in one commit.

        :param limit: the target's max_loadbalancers (0: unlimited).
        :param extra_intents: intents queued on the target after the move
            (an Octavia failover: applied once the move switched).
        :returns: the move record.
        :raises ValueError: naming why the move cannot start (unknown load
            balancer, already on the target, a move running, target full).
        :raises RuntimeError: the counters kept changing.
        """
        for _attempt in range(_ATTEMPTS):
            lb_entry = self.kv.get(keys.lb_key(lb_id))
            if lb_entry is None:
                raise ValueError('no load balancer %s in the multilb state '
                                 'store' % lb_id)
            record = json.loads(lb_entry.value)
            source = record['cluster']
            if source == target:
                raise ValueError('load balancer %s is already on cluster %s'
                                 % (lb_id, target))
            current = self.kv.get(move_key(lb_id))
            if current is not None:
                running = json.loads(current.value)
                if running.get('phase') != FAILED:
                    raise ValueError(
                        'load balancer %s is already moving from %s to %s '
                        '(%s)' % (lb_id, running['source'],
                                  running['target'], running['phase']))
            if not record.get('applied'):
                raise ValueError('load balancer %s has not been applied to '
                                 'cluster %s yet; move it once it is ACTIVE'
                                 % (lb_id, source))
            project = record.get('project_id') or ''
            count_key = keys.count_key(target)
            project_key = keys.project_key(project, target)
            placed, version = _counter(self.kv, count_key)
            if limit and placed >= limit:
                raise ValueError('cluster %s is full (%d of %d load '
                                 'balancers)' % (target, placed, limit))
            pcount, pversion = _counter(self.kv, project_key)
            now = time.time()
            move = {'lb': lb_id, 'source': source, 'target': target,
                    'phase': APPLYING, 'started_at': now, 'by': by,
                    'project': project}
            if reason:
                move['reason'] = reason
            intent = {'op': MOVE, 'type': 'loadbalancer', 'id': lb_id,
                      'project': project, 'source': source}
            puts = {move_key(lb_id): _dump(move),
                    count_key: str(placed + 1),
                    project_key: str(pcount + 1)}
            for queued in (intent,) + tuple(extra_intents):
                queued.setdefault('project', project)
                key = self.state.work_key(target, lb_id, queued)
                puts[key] = _dump(queued)     # with its seq and time
            if self.kv.commit(checks={
                    keys.lb_key(lb_id): lb_entry.version,
                    move_key(lb_id): current.version if current else None,
                    count_key: version, project_key: pversion}, puts=puts):
                LOG.info('Load balancer %s: move from cluster %s to %s '
                         'queued by %s', lb_id, source, target, by)
                return move
        raise RuntimeError('counters of cluster %s kept changing' % target)

    # -- the target's worker -----------------------------------------------

    def switch(self, lb_id, target, record, reserve, fence=None):
        """Make the target the load balancer's cluster (see the module
        docstring), in one commit.

        :param record: the placement record as the target will hold it
            (``cluster`` set to the target, its addresses and binds).
        :param reserve: ``(checks, puts)`` of the target's address:port
            reservations (:mod:`multilb.bindings`).
        :returns: True if switched; False if the load balancer or its
            pending work changed meanwhile (apply again, then retry).
        """
        kv = self.kv
        lb_entry = kv.get(keys.lb_key(lb_id))
        move_entry = kv.get(move_key(lb_id))
        if lb_entry is None or move_entry is None:
            return False
        old = json.loads(lb_entry.value)
        move = json.loads(move_entry.value)
        source = old['cluster']
        if move.get('phase') != APPLYING or move['target'] != target or \
                source == target:
            return False
        checks = dict(fence.checks()) if fence is not None else {}
        checks.update(reserve[0])
        checks[keys.lb_key(lb_id)] = lb_entry.version
        checks[move_key(lb_id)] = move_entry.version
        puts, deletes = dict(reserve[1]), []
        project = old.get('project_id') or ''
        # pending work and undelivered statuses follow the load balancer
        for entry in kv.get_prefix(keys.work_prefix(source, lb_id)):
            checks[entry.key] = entry.version
            deletes.append(entry.key)
            seq = entry.key.rsplit('/', 1)[1]
            puts[keys.work_prefix(target, lb_id) + seq] = entry.value
        for entry in kv.get_prefix(keys.work_prefix(target, lb_id)):
            if json.loads(entry.value).get('op') == MOVE:
                checks[entry.key] = entry.version
                deletes.append(entry.key)
        for entry in kv.get_prefix(keys.outbox_prefix(source)):
            if json.loads(entry.value).get('lb') == lb_id:
                checks[entry.key] = entry.version
                deletes.append(entry.key)
                seq = entry.key.rsplit('/', 1)[1]
                puts[keys.outbox_prefix(target) + seq] = entry.value
        # capacity: the target's slot was reserved at the start
        state_mod.count_down(kv, source, project, checks, puts, deletes)
        listeners = int(old.get('listeners') or 0)
        if listeners:
            for cluster, delta in ((source, -listeners),
                                   (target, listeners)):
                key = keys.listeners_key(cluster)
                value, version = _counter(kv, key)
                checks[key] = version
                puts[key] = str(max(0, value + delta))
        deletes.append(keys.marker_key(source, lb_id))
        puts[keys.marker_key(target, lb_id)] = ''
        deletes += sorted(set(old.get('binds') or {}) -
                          set(record.get('binds') or {}))
        puts[keys.lb_key(lb_id)] = _dump(dict(record, cluster=target))
        evict = {'op': EVICT, 'type': 'loadbalancer', 'id': lb_id,
                 'project': project, 'target': target}
        key = self.state.work_key(source, lb_id, evict)
        puts[key] = _dump(evict)
        puts[move_key(lb_id)] = _dump(dict(move, phase=EVICTING,
                                           switched_at=time.time()))
        deletes = [k for k in deletes if k not in puts]
        return kv.commit(checks=checks, puts=puts, deletes=deletes)

    def abort(self, lb_id, target, reason, fence=None):
        """Roll a move back before its switch: the target's reservation
        is given back, intents queued on the target for the load balancer
        go back to its cluster, move/<lb> phase "failed" with ``reason``.
        The caller removed the load balancer from the target first (what
        it could not remove, the target's orphan sweep does).

        :returns: False if the move is not (or no longer) abortable.
        """
        kv = self.kv
        for _attempt in range(_ATTEMPTS):
            move_entry = kv.get(move_key(lb_id))
            if move_entry is None:
                return False
            move = json.loads(move_entry.value)
            if move.get('phase') != APPLYING or move['target'] != target:
                return False
            lb_entry = kv.get(keys.lb_key(lb_id))
            record = json.loads(lb_entry.value) if lb_entry else None
            checks = dict(fence.checks()) if fence is not None else {}
            checks[move_key(lb_id)] = move_entry.version
            checks[keys.lb_key(lb_id)] = (
                lb_entry.version if lb_entry else None)
            puts, deletes = {}, []
            for entry in kv.get_prefix(keys.work_prefix(target, lb_id)):
                checks[entry.key] = entry.version
                deletes.append(entry.key)
                if record is not None and \
                        json.loads(entry.value).get('op') != MOVE:
                    seq = entry.key.rsplit('/', 1)[1]
                    puts[keys.work_prefix(record['cluster'], lb_id)
                         + seq] = entry.value
            state_mod.count_down(kv, target, move.get('project') or '',
                                 checks, puts, deletes)
            puts[move_key(lb_id)] = _dump(dict(
                move, phase=FAILED, error=reason, ended_at=time.time()))
            if kv.commit(checks=checks, puts=puts, deletes=deletes):
                return True
        raise RuntimeError('move of load balancer %s kept changing' % lb_id)

    # -- the source's worker -----------------------------------------------

    def finish(self, lb_id, source, intents, fence=None):
        """The source no longer holds the load balancer: the evict intents
        are done and move/<lb> is removed (when it is this move's)."""
        checks = dict(fence.checks()) if fence is not None else {}
        deletes = [i.key for i in intents]
        move_entry = self.kv.get(move_key(lb_id))
        if move_entry is not None:
            move = json.loads(move_entry.value)
            if move.get('source') == source and move.get('phase') == EVICTING:
                checks[move_key(lb_id)] = move_entry.version
                deletes.append(move_key(lb_id))
        return self.kv.commit(checks=checks, deletes=deletes)

    def forward(self, lb_id, source, intents, to, fence=None):
        """Hand intents recorded on ``source`` after the load balancer
        moved to cluster ``to`` (the same sequence numbers: their order
        is kept)."""
        checks = dict(fence.checks()) if fence is not None else {}
        puts, deletes = {}, []
        for intent in intents:
            checks[intent.key] = intent.get('_version')
            deletes.append(intent.key)
            value = {k: v for k, v in intent.items()
                     if not k.startswith('_')}
            puts[keys.work_prefix(to, lb_id) + intent['seq']] = \
                _dump(value)
        return self.kv.commit(checks={k: v for k, v in checks.items()
                                      if v is not None},
                              puts=puts, deletes=deletes)
