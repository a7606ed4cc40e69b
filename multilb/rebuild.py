"""Placement records rebuilt from a cluster and Octavia (disaster recovery).

Called by ``multilb-manage store rebuild`` (:mod:`multilb.cmd.rebuild`)
after the state store was lost, or restored from a backup older than the
fleet. For a load balancer that exactly one cluster holds and that Octavia
knows, :func:`plan` derives from Octavia's graph what the driver's
placement and the agent's last apply would have recorded:

* ``lb/<id>``: cluster, project, the flavor metadata Octavia holds now,
  ``applied``, the index, pools and members, listener count, locks, the
  addresses the cluster binds and their ``bind/`` reservations, and the
  pool VIP (:mod:`multilb.vips`) when the VIP is in a configured pool;
* ``placement/<cluster>/<id>``, ``idx/<object id>``, one more on
  ``cluster/<name>/count``, ``project/<project>/<cluster>`` and the
  listeners on ``cluster/<name>/listeners``;
* the ``bind/`` and ``vip/`` reservations themselves.

:meth:`Rebuilder.write` writes all of it in one commit that checks that
``lb/<id>`` is absent (an existing record is never overwritten: it is
*kept*) and compare-and-swaps the counters. A reservation held by another
load balancer is left to it and left out of the record (reported). What
no cluster listing or Octavia graph holds is listed in :data:`LOST`.

Nothing here logs a graph: graphs carry TLS keys.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time

from multilb import bindings
from multilb import graph as graphs
from multilb import keys
from multilb import state as state_mod
from multilb import status as statuses
from multilb import store
from multilb import vips

LOG = logging.getLogger(__name__)

ATTEMPTS = 20

RECOVERED, WOULD_RECOVER, KEPT = 'recovered', 'would-recover', 'kept'

# what no rebuilt record holds: (key, what it means), for every load balancer
LOST = (
    ('availability_zone', 'availability-zone metadata: Octavia\'s driver '
     'agent hands out the zone\'s name only, so a rebuilt record has no '
     'availability-zone constraint (lb show: none); a later move of the '
     'load balancer is placed without it'),
    ('statistics', 'listener statistics totals (stats/): lost; the agent '
     'counts again from zero, so the totals Octavia shows restart from '
     'what the agent counts next'),
    ('sent', 'statuses last reported (sent/): rebuilt empty; the next '
     'status report of each object is a full one'),
    ('refused', 'objects the cluster refused: unknown, the record lists '
     'none; the next change of the load balancer tries them again'),
    ('pending', 'pending work and undelivered status updates (work/, '
     'outbox/): lost; an object Octavia still shows PENDING_* stays so'),
    ('created_at', 'the creation time: the record carries the time of the '
     'rebuild'),
)


def _dump(value):
    return json.dumps(value, sort_keys=True, separators=(',', ':'))


def _pool_of(pools, address):
    for pool in pools.values():
        if address and pool.contains(address):
            return pool
    return None


def plan(cluster, graph, pools=None, now=None):
    """What the store would hold for ``graph`` placed on ``cluster``.

    :param cluster: a :class:`multilb.conf.clusters.ClusterConfig`.
    :param graph: Octavia's graph (:func:`multilb.graph.from_octavia`).
    :param pools: ``{name: VipPool}`` of ``[multilb] vip_pools``.
    :returns: ``{'record', 'index', 'binds', 'vip'}``: ``binds`` is
        ``{bind key: listener id}``, ``vip`` ``(key, value)`` or None;
        reservations are checked by :meth:`Rebuilder.write`.
    """
    now = time.time() if now is None else now
    lb_id = graph['loadbalancer_id']
    index = graphs.object_ids(graph)
    bound = bindings.addresses_for(cluster, bindings.vips_of(graph))
    try:
        binds = bindings.keys_for(cluster, bound, graph['listeners'])
    except bindings.PortRefused:
        binds = {}      # the API refuses such a listener: none to reserve
    flavor = graph.get('flavor')
    record = {
        'id': lb_id, 'cluster': cluster.name,
        'project_id': graph.get('project_id') or '',
        'flavor': dict(flavor) if isinstance(flavor, dict) else {},
        'availability_zone': {}, 'created_at': now, 'rebuilt_at': now,
        'pools': graphs.pool_members(graph),
        'listeners': len(graph['listeners']),
        'locks': statuses.locks(graph), 'applied': True, 'refused': [],
        'indexed': sorted(index), 'addresses': bound, 'binds': binds}
    vip = None
    pool = _pool_of(pools or {}, graph.get('vip_address'))
    if pool is not None:
        address = str(ipaddress.ip_address(graph['vip_address']))
        record['vip'] = {'pool': pool.name, 'address': address,
                         'quarantine': pool.quarantine}
        vip = (vips.PREFIX + '%s/%s' % (pool.name, address), {
            'state': 'allocated', 'lb': lb_id,
            'project': record['project_id'],
            'port': graph.get('vip_port_id') or '', 'at': now})
    return {'record': record, 'index': index, 'binds': binds, 'vip': vip}


class Rebuilder:
    """Writes planned records (one commit per load balancer)."""

    def __init__(self, state, dry_run=False):
        self.state = state
        self.kv = state.kv
        self.dry_run = dry_run

    def write(self, planned):
        """Record one planned load balancer unless the store has it.

        :returns: ``{'outcome', 'writes', 'not_recovered'}``: outcome
            ``recovered`` (``would-recover`` in a dry run) or ``kept`` (the
            store has a record: nothing written, ``cluster`` says where it
            places it); ``writes`` the keys written (or that would be);
            ``not_recovered`` what was left out (reservations held by
            another load balancer).
        :raises RuntimeError: the counters kept changing.
        """
        lb_id = planned['record']['id']
        for _attempt in range(ATTEMPTS):
            record = dict(planned['record'])
            existing = self.state.get_lb(lb_id)
            if existing is not None:
                return {'outcome': KEPT, 'writes': [], 'not_recovered': [],
                        'cluster': existing.get('cluster')}
            checks, puts, notes = self._ops(record, planned)
            index = state_mod.State.index_puts(lb_id, planned['index'])
            if self.dry_run:
                return {'outcome': WOULD_RECOVER, 'not_recovered': notes,
                        'writes': sorted(set(puts) | set(index))}
            if len(puts) + len(index) <= store.MAX_COMMIT_OPS:
                puts.update(index)
            else:
                # a large load balancer: the index first, in chunks (extra
                # index entries naming this load balancer are harmless)
                self._write_index(index)
            if self.kv.commit(checks=checks, puts=puts):
                LOG.info('Rebuilt the placement record of load balancer %s '
                         'on cluster %s', lb_id, record['cluster'])
                return {'outcome': RECOVERED, 'not_recovered': notes,
                        'writes': sorted(set(puts) | set(index))}
        raise RuntimeError('counters of cluster %s kept changing while '
                           'load balancer %s was recorded' % (
                               planned['record']['cluster'], lb_id))

    def _write_index(self, index):
        keys = sorted(index)
        for start in range(0, len(keys), store.MAX_COMMIT_OPS):
            chunk = keys[start:start + store.MAX_COMMIT_OPS]
            self.kv.commit(puts={k: index[k] for k in chunk})

    def _ops(self, record, planned):
        """``(checks, puts, notes)`` of one load balancer's commit;
        ``record`` loses the reservations another load balancer holds."""
        lb_id, cluster = record['id'], record['cluster']
        checks = {keys.lb_key(lb_id): None}
        puts = {keys.marker_key(cluster, lb_id): ''}
        self._add(checks, puts, keys.count_key(cluster), 1)
        self._add(checks, puts, keys.project_key(
            record['project_id'], cluster), 1)
        if record['listeners']:
            self._add(checks, puts, keys.listeners_key(cluster),
                      record['listeners'])
        notes = []
        binds = {}
        for key, listener_id in sorted(planned['binds'].items()):
            value = {'lb': lb_id, 'listener': listener_id,
                     'at': record['rebuilt_at']}
            if self._reserve(checks, puts, key, value, ('lb', 'listener')):
                binds[key] = listener_id
            else:
                notes.append('reservation %s: held by another load '
                             'balancer (left to it; not reserved)' % key)
        record['binds'] = binds
        if planned['vip'] is not None:
            key, value = planned['vip']
            if not self._reserve(checks, puts, key, value, ('lb',)):
                vip = record.pop('vip')
                notes.append('VIP %s of pool %s: held by another load '
                             'balancer or in quarantine (left to it; not '
                             'reserved)' % (vip['address'], vip['pool']))
        puts[keys.lb_key(lb_id)] = _dump(record)
        return checks, puts, notes

    def _add(self, checks, puts, key, amount):
        entry = self.kv.get(key)
        checks[key] = entry.version if entry else None
        puts[key] = str(amount + (int(entry.value) if entry else 0))

    def _reserve(self, checks, puts, key, value, same):
        """Reserve ``key`` unless another holder has it; True if ours."""
        entry = self.kv.get(key)
        if entry is not None:
            held = json.loads(entry.value)
            mine = held.get('state', 'allocated') == 'allocated' and all(
                held.get(f) == value[f] for f in same)
            if not mine:
                return False
            checks[key] = entry.version
            return True
        checks[key] = None
        puts[key] = _dump(value)
        return True
