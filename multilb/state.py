"""multilb's durable state, built on a :class:`~multilb.store.base.KVStore`.

Key layout: :mod:`multilb.keys`.

``cluster/`` holds a few keys per cluster only, so that one prefix read gives
the scheduler the runtime state of the whole fleet.

Every change that must not be half-done is one :meth:`KVStore.commit`: a
placement with its capacity reservation, index entries and first intent; an
agent's completion (intents removed, outbox entry added, records updated,
capacity released). TLS data and credentials never reach this module: intents
carry object ids and scalar field values only.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from multilb import bindings
from multilb import exceptions
from multilb import keys
from multilb import status as statuses
from multilb import vips

LOG = logging.getLogger(__name__)

_CAS_ATTEMPTS = 50
_CHUNK = 100   # operations per commit; etcd allows 128 by default


def _chunks(items):
    items = list(items)
    return [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def count_down(kv, cluster, project, checks, puts, deletes):
    """Add to a commit: ``cluster``'s load balancer counter and
    ``project``'s on it, one less each (checked at their versions). The
    project counter is deleted at 0, the cluster's is kept; an absent
    counter is left alone (nothing was counted)."""
    for key in (keys.count_key(cluster), keys.project_key(project, cluster)):
        counter = kv.get(key)
        if counter is None:
            continue
        checks[key] = counter.version
        remaining = int(counter.value) - 1
        if remaining > 0 or key == keys.count_key(cluster):
            puts[key] = str(max(0, remaining))
        else:
            deletes.append(key)


def new_seq():
    """A key suffix that sorts by creation time and never collides."""
    return '%019d-%s' % (time.time_ns(), uuid.uuid4().hex[:8])


def _dump(value):
    return json.dumps(value, sort_keys=True, separators=(',', ':'))


class Intent(dict):
    """One pending operation on a load balancer (a plain JSON dict).

    Keys: ``seq``, ``at`` (epoch seconds recorded), ``op`` (create, update,
    delete, failover, batch), ``type`` (loadbalancer, listener, pool,
    member, healthmonitor, l7policy, l7rule), ``id`` and, depending on the
    operation, ``expect`` (scalar fields an update sets), ``members`` and
    ``deleted`` (member batch), ``tree`` (ids of an LB being deleted).
    """

    @property
    def key(self):
        return self['_key']


class _BreakerRecord:
    def __init__(self, state, cluster):
        self.state = state
        self.cluster = cluster

    def load(self):
        return self.state.get_breaker(self.cluster)

    def save(self, record):
        self.state.set_breaker(self.cluster, record)


class State:
    """Domain operations used by the driver, the agent and multilb-manage."""

    def __init__(self, kv):
        self.kv = kv

    # -- reads ---------------------------------------------------------------

    def get_lb(self, lb_id):
        entry = self.kv.get(keys.lb_key(lb_id))
        return json.loads(entry.value) if entry else None

    def lookup(self, object_id):
        """Return ``(lb_id, object_type)`` for any indexed object, or None."""
        entry = self.kv.get(keys.idx_key(object_id))
        if not entry:
            return None
        found = json.loads(entry.value)
        return found['lb'], found['type']

    def get_sent(self, lb_id):
        """``{object id: [provisioning, operating]}``: what multilb last
        reported of each object of ``lb_id`` ({} if nothing yet)."""
        entry = self.kv.get(keys.sent_key(lb_id))
        return json.loads(entry.value) if entry else {}

    def record_sent(self, lb_id, status):
        """Merge a status dict Octavia accepted into ``sent/<lb id>``
        (the monitor's operating statuses; the worker's go through
        :meth:`complete`). Nothing is written for a released LB."""
        for _attempt in range(_CAS_ATTEMPTS):
            if self.kv.get(keys.lb_key(lb_id)) is None:
                return
            entry = self.kv.get(keys.sent_key(lb_id))
            old = json.loads(entry.value) if entry else {}
            merged = statuses.merge_sent(old, status)
            if merged == old or self.kv.commit(
                    checks={keys.sent_key(lb_id): entry.version if entry
                            else None},
                    puts={keys.sent_key(lb_id): _dump(merged)}):
                return
        raise RuntimeError('sent statuses of load balancer %s kept '
                           'changing' % lb_id)

    def cluster_runtime(self):
        """``{cluster: {"placed", "version", "admin", "health", "breaker",
        "listeners"}}`` in one read.

        ``version`` is the capacity counter's version for
        :meth:`place_loadbalancer` (None before the first placement);
        ``admin``, ``health`` and ``breaker`` are {} when never written.
        """
        found = {}
        for entry in self.kv.get_prefix('cluster/'):
            parts = entry.key.split('/')
            if len(parts) != 3:
                continue
            info = found.setdefault(parts[1], {
                'placed': 0, 'version': None, 'admin': {}, 'health': {},
                'breaker': {}, 'listeners': 0})
            if parts[2] == 'count':
                info['placed'], info['version'] = (int(entry.value),
                                                   entry.version)
            elif parts[2] == 'listeners':
                info['listeners'] = int(entry.value)
            elif parts[2] in ('admin', 'health', 'breaker'):
                info[parts[2]] = json.loads(entry.value)
        return found

    def cluster_counts(self):
        """``{cluster: (placed, version)}`` for clusters that hold LBs."""
        return {name: (info['placed'], info['version'])
                for name, info in self.cluster_runtime().items()
                if info['version'] is not None}

    def cluster_listeners(self, cluster):
        """Listeners the agent applied on ``cluster``."""
        entry = self.kv.get(keys.listeners_key(cluster))
        return int(entry.value) if entry else 0

    def project_counts(self, project_id):
        """``{cluster: (placed, version)}`` of one project's LBs."""
        prefix = 'project/%s/' % project_id
        return {e.key[len(prefix):]: (int(e.value), e.version)
                for e in self.kv.get_prefix(prefix)}

    def cluster_lb_ids(self, cluster):
        prefix = 'placement/%s/' % cluster
        return [e.key[len(prefix):] for e in self.kv.get_prefix(prefix)]

    def set_admin(self, cluster, **fields):
        """Merge operator fields (``draining``, ``reason``, ...) for a cluster.

        Every API worker reads them on its next placement: drain and undrain
        take effect at once, on every host.
        """
        for _attempt in range(_CAS_ATTEMPTS):
            entry = self.kv.get(keys.admin_key(cluster))
            current = json.loads(entry.value) if entry else {}
            current.update(fields, at=time.time())
            if self.kv.commit(
                    checks={keys.admin_key(cluster):
                            entry.version if entry else None},
                    puts={keys.admin_key(cluster): _dump(current)}):
                return current
        raise RuntimeError('cluster %s admin state kept changing' % cluster)

    def set_health(self, cluster, health):
        """Record the agent's latest view of a cluster (last writer wins)."""
        self.set_healths({cluster: health})

    def set_healths(self, records):
        """:meth:`set_health` of several clusters, ``{cluster: health}``,
        in one commit per 100 clusters."""
        for chunk in _chunks(sorted(records.items())):
            self._commit({keys.health_key(cluster): _dump(health)
                          for cluster, health in chunk}, ())

    def get_breaker(self, cluster):
        """The cluster's circuit breaker record ({} if never written)."""
        entry = self.kv.get(keys.breaker_key(cluster))
        return json.loads(entry.value) if entry else {}

    def set_breaker(self, cluster, record):
        """Share the breaker's state (its owner writes; last writer wins)."""
        self._commit({keys.breaker_key(cluster): _dump(record)}, ())

    def breaker_record(self, cluster):
        """The ``store`` a :class:`backends.transport.ClusterBreaker` shares
        its state through."""
        return _BreakerRecord(self, cluster)

    def pending(self, cluster, lb_id=None):
        """``{lb_id: [Intent, ...]}`` (oldest first) for one cluster, or
        for one of its load balancers only."""
        prefix = keys.work_prefix(cluster)
        if lb_id is not None:
            found = {}
            for entry in self.kv.get_prefix(keys.work_prefix(cluster, lb_id)):
                intent = Intent(json.loads(entry.value), _key=entry.key)
                found.setdefault(lb_id, []).append(intent)
            return found
        found = {}
        for entry in self.kv.get_prefix(prefix):
            lb_id = entry.key[len(prefix):].split('/', 1)[0]
            intent = Intent(json.loads(entry.value), _key=entry.key)
            found.setdefault(lb_id, []).append(intent)
        return found

    def outbox(self, cluster):
        """``[(key, {"lb": id, "status": {...}}), ...]`` oldest first.

        An entry whose delivery failed also has ``delivery`` (see
        :meth:`record_delivery_failure`). Entries are per load balancer:
        ``status`` only ever names objects of ``lb``.
        """
        return [(e.key, json.loads(e.value))
                for e in self.kv.get_prefix(keys.outbox_prefix(cluster))]

    def outbox_entry(self, key):
        entry = self.kv.get(key)
        return json.loads(entry.value) if entry else None

    def outbox_entries(self, cluster=None):
        """``[{"cluster", "key", "lb", "created_at", "delivery"}, ...]`` of
        one cluster or all (``multilb-manage outbox list``), oldest first."""
        prefix = keys.outbox_prefix(cluster) if cluster else 'outbox/'
        found = []
        for e in self.kv.get_prefix(prefix):
            name, seq = e.key[len('outbox/'):].split('/', 1)
            value = json.loads(e.value)
            found.append({'cluster': name, 'key': e.key,
                          'lb': value.get('lb'),
                          'created_at': int(seq.split('-', 1)[0]) / 1e9,
                          'delivery': value.get('delivery')})
        return found

    def record_delivery_failure(self, key, delivery):
        """Set an outbox entry's ``delivery`` field (the failed attempts,
        from :class:`multilb.outbox.Outbox`), by compare-and-swap so that
        an entry acknowledged meanwhile is never written back.

        :returns: False if the entry is gone (delivered or dropped).
        """
        for _attempt in range(_CAS_ATTEMPTS):
            entry = self.kv.get(key)
            if entry is None:
                return False
            value = json.loads(entry.value)
            value['delivery'] = delivery
            if self.kv.commit(checks={key: entry.version},
                              puts={key: _dump(value)}):
                return True
        raise RuntimeError('outbox entry %s kept changing' % key)

    # -- API side ------------------------------------------------------------

    def place_loadbalancer(self, record, limit, count, intent, index,
                           project_count=(0, None), reserve=({}, {})):
        """Reserve a slot on ``record['cluster']`` and record the new LB.

        One commit: capacity counter (compare-and-swap on ``count``), the
        project's counter on that cluster, LB record, placement marker,
        index entries and the create intent.

        :param count: ``(placed, version)`` read by the caller, or
            ``(0, None)`` when the cluster has no counter yet.
        :param project_count: the same for the project's counter.
        :param limit: the cluster's max_loadbalancers, 0 = unlimited.
        :param reserve: ``(checks, puts)`` of address:port reservations
            (:mod:`multilb.bindings`) made in the same commit.
        :returns: True if placed; False if the cluster is full or a counter
            or a reservation moved (re-read and retry).
        """
        cluster, lb_id = record['cluster'], record['id']
        project_id = record.get('project_id') or ''
        placed, version = count
        if limit and placed >= limit:
            return False
        puts = {keys.count_key(cluster): str(placed + 1),
                keys.lb_key(lb_id): _dump(record),
                keys.marker_key(cluster, lb_id): '',
                keys.project_key(project_id, cluster):
                    str(project_count[0] + 1)}
        puts.update(self.index_puts(lb_id, index))
        work_key = self.work_key(cluster, lb_id, intent)
        puts[work_key] = _dump(intent)
        puts.update(reserve[1])
        return self._commit_confirmed(
            dict(reserve[0], **{
                keys.count_key(cluster): version, keys.lb_key(lb_id): None,
                keys.project_key(project_id, cluster): project_count[1]}),
            puts, keys.lb_key(lb_id))

    def add_intent(self, lb_id, cluster, intent, index=None,
                   reserve=({}, {})):
        """Record an operation on an existing LB (and index new objects).

        :param reserve: ``(checks, puts)`` of reservations made in the same
            commit (:mod:`multilb.bindings`).
        :returns: False if a reservation moved (re-read and retry).
        """
        puts = self.index_puts(lb_id, index or {})
        work_key = self.work_key(cluster, lb_id, intent)
        puts[work_key] = _dump(intent)
        puts.update(reserve[1])
        if self._commit_confirmed(reserve[0], puts, work_key):
            return True
        if not reserve[0]:
            raise RuntimeError('unconditional commit refused')
        return False

    def _commit_confirmed(self, checks, puts, key):
        """``kv.commit``, and after a failure that may hide an applied
        commit (etcd took it, its answer was lost) a read of ``key``: if it
        holds ``puts[key]`` (unique: a new record or intent), the commit
        was applied and a caller must not tell the user nothing changed.

        :raises StoreUnavailable: the commit failed and ``key`` does not
            hold it (or cannot be read).
        """
        try:
            return self.kv.commit(checks=checks, puts=puts)
        except exceptions.StoreUnavailable as exc:
            try:
                entry = self.kv.get(key)
            except exceptions.StoreUnavailable:
                entry = None
            if entry is None or entry.value != puts[key]:
                raise
            LOG.warning('The state store answered a commit with an error '
                        '(%s), but it was applied: %s holds it', exc, key)
            return True

    def add_sync(self, lb_id, record):
        """Queue a re-apply of ``lb_id`` on its cluster (``record``: its
        placement record); the agent reports nothing for it."""
        self.add_intent(lb_id, record['cluster'], {
            'op': 'sync', 'type': 'loadbalancer', 'id': lb_id,
            'project': record.get('project_id') or ''})

    def has_placement(self, lb_id):
        return bool(lb_id) and self.kv.get(keys.lb_key(lb_id)) is not None

    @staticmethod
    def index_puts(lb_id, index):
        return {keys.idx_key(oid): _dump({'lb': lb_id, 'type': otype})
                for oid, otype in index.items()}

    @staticmethod
    def work_key(cluster, lb_id, intent):
        intent.setdefault('seq', new_seq())
        intent.setdefault('at', time.time())
        return keys.work_prefix(cluster, lb_id) + intent['seq']

    # -- agent side ---------------------------------------------------------

    def complete(self, lb_id, cluster, intents, status=None, record=None,
                 index=None, unindex=(), release=False, free=(), fence=None):
        """Finish intents.

        The outcome is one commit: intents removed, outbox entry added, LB
        record updated or (``release``) removed with its capacity given
        back. Index entries are written before it and removed after it, in
        chunks, so that a load balancer of any size fits etcd's limit on
        operations per transaction; a crash between the steps leaves only
        extra index entries, which are harmless and rewritten next time.

        :param status: an Octavia status dict to put in the outbox, or None.
        :param record: the updated LB record to store (ignored if release).
        :param index: ``{object_id: type}`` to add to the index.
        :param unindex: object ids to remove from the index.
        :param release: forget the LB and give its capacity back (its
            address:port reservations and pool VIP too).
        :param free: address:port reservation keys to remove.
        :param fence: the worker's :class:`multilb.fencing.Ownership`: the
            commit also checks that its agent still owns the cluster.
        :returns: the outbox key, or None.
        :raises Fenced: another agent owns the cluster now; nothing was
            committed.
        """
        puts = self.index_puts(lb_id, index or {})
        for chunk in _chunks(sorted(puts)):
            self._commit({k: puts[k] for k in chunk}, ())
        outbox_key = self._finish(lb_id, cluster, intents, status, record,
                                  release, free, fence)
        for chunk in _chunks(sorted(keys.idx_key(o) for o in unindex)):
            self._commit({}, chunk)
        return outbox_key

    def _commit(self, puts, deletes):
        if not self.kv.commit(puts=puts, deletes=deletes):
            raise RuntimeError('unconditional commit refused')

    def _finish(self, lb_id, cluster, intents, status, record, release,
                free=(), fence=None):
        for _attempt in range(_CAS_ATTEMPTS):
            checks = dict(fence.checks()) if fence is not None else {}
            puts = {}
            deletes = [i.key for i in intents] + list(free)
            outbox_key = None
            if status:
                outbox_key = keys.outbox_prefix(cluster) + new_seq()
                puts[outbox_key] = _dump({'lb': lb_id, 'status': status})
                if not release:
                    self._sent_ops(lb_id, status, checks, puts)
            entry = self.kv.get(keys.lb_key(lb_id))
            old = json.loads(entry.value) if entry else {}
            if old and old.get('cluster') != cluster and (
                    status or record is not None or release):
                raise exceptions.Moved(
                    'load balancer %s moved from cluster %s to %s' % (
                        lb_id, cluster, old.get('cluster')))
            # a move switches the record in one commit (multilb.moves):
            # never write over it with this cluster's view
            checks[keys.lb_key(lb_id)] = entry.version if entry else None
            delta = 0
            if release:
                delta = -old.get('listeners', 0)
                self._release(lb_id, cluster, checks, puts, deletes)
            elif record is not None:
                delta = record.get('listeners', 0) - old.get('listeners', 0)
                puts[keys.lb_key(lb_id)] = _dump(record)
            if delta:
                counter = self.kv.get(keys.listeners_key(cluster))
                checks[keys.listeners_key(cluster)] = (
                    counter.version if counter else None)
                puts[keys.listeners_key(cluster)] = str(max(0, delta + (
                    int(counter.value) if counter else 0)))
            if self.kv.commit(checks=checks, puts=puts, deletes=deletes):
                return outbox_key
            if fence is not None:
                fence.verify()
        raise RuntimeError('could not release capacity of load balancer %s '
                           'on cluster %s: counter kept changing' % (
                               lb_id, cluster))

    def _sent_ops(self, lb_id, status, checks, puts):
        """Add the merge of ``status`` into ``sent/<lb id>`` to a commit
        (compare-and-swap: the monitor merges into it too)."""
        entry = self.kv.get(keys.sent_key(lb_id))
        old = json.loads(entry.value) if entry else {}
        merged = statuses.merge_sent(old, status)
        checks[keys.sent_key(lb_id)] = entry.version if entry else None
        if merged != old:
            puts[keys.sent_key(lb_id)] = _dump(merged)

    def _release(self, lb_id, cluster, checks, puts, deletes):
        """Add the removal of a placement and its counters to a commit."""
        marker = self.kv.get(keys.marker_key(cluster, lb_id))
        record = self.get_lb(lb_id) or {}
        # No marker: already released (a crash after an earlier commit), so
        # the counters must not go down twice.
        if marker is not None:
            count_down(self.kv, cluster, record.get('project_id') or '',
                       checks, puts, deletes)
        deletes += [keys.lb_key(lb_id), keys.marker_key(cluster, lb_id),
                    keys.idx_key(lb_id), keys.stats_key(lb_id),
                    keys.sent_key(lb_id)]
        if marker is not None:
            vips.release_ops(record, time.time(), puts)
            bindings.release_ops(record, deletes)

    # -- listener statistics -----------------------------------------------

    def get_statistics(self, lb_id):
        """``{listener_id: {counter: total}}`` kept for a load balancer."""
        entry = self.kv.get(keys.stats_key(lb_id))
        return json.loads(entry.value) if entry else {}

    def save_statistics(self, totals):
        """Store ``{lb_id: {listener_id: {counter: total}}}``.

        Only the cluster's owning agent writes a load balancer's totals, so
        plain puts are enough; a load balancer released meanwhile loses its
        key again at the next release check of the caller.
        """
        puts = {keys.stats_key(lb_id): _dump(value)
                for lb_id, value in totals.items()}
        for chunk in _chunks(sorted(puts)):
            self._commit({k: puts[k] for k in chunk}, ())

    def drop_statistics(self, lb_ids):
        for chunk in _chunks(sorted(keys.stats_key(i) for i in lb_ids)):
            self._commit({}, chunk)

    def ack(self, outbox_key):
        """Forget a status update Octavia accepted."""
        self.kv.commit(deletes=[outbox_key])
