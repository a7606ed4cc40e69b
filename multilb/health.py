"""Operating status of a load balancer's objects from member health.

Pure functions. The backend says which monitored members pass their health
checks (:meth:`backends.base.ApplianceBackend.member_health`); this module
turns that into the operating status Octavia shows for every object, as
Octavia's amphora health manager does:

=============  ==============================================================
object         operating status
=============  ==============================================================
member         OFFLINE if disabled; NO_MONITOR if its pool has no enabled
               health monitor; else ONLINE / ERROR as its checks pass / fail
               (no verdict yet, or a pool no listener uses: not reported,
               Octavia keeps what it shows)
pool           OFFLINE if disabled or if no listener sends traffic to it;
               ERROR if every enabled member is in ERROR; DEGRADED if some
               are; else ONLINE
listener       OFFLINE if disabled; DEGRADED if a pool it sends traffic to
               (default pool, pools of enabled L7 redirects) is DEGRADED or
               ERROR; else ONLINE
load balancer  OFFLINE if disabled; DEGRADED if any listener or pool is
               DEGRADED or ERROR; else ONLINE
=============  ==============================================================

Only for clusters that observe their data plane
(:meth:`backends.base.ApplianceBackend.observes_health`).
"""

from __future__ import annotations

from octavia_lib.common import constants as consts

from multilb import graph as graphs

ONLINE, OFFLINE, ERROR = consts.ONLINE, consts.OFFLINE, consts.ERROR
DEGRADED, NO_MONITOR = consts.DEGRADED, consts.NO_MONITOR
_UNWELL = (DEGRADED, ERROR)

# Keys of a graph that may hold TLS material: never kept by the monitor.
_SECRET_KEYS = frozenset((
    'default_tls_container_data', 'sni_container_data',
    'client_ca_tls_container_data', 'client_crl_container_data',
    'tls_container_data', 'ca_tls_container_data', 'crl_container_data'))


def _enabled(obj):
    return obj.get('admin_state_up', True) is not False


def observable(graph):
    """A copy of ``graph`` without TLS material, kept between polls."""
    def strip(value):
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()
                    if k not in _SECRET_KEYS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    return strip(graph)


def monitored(pool):
    monitor = pool.get('healthmonitor')
    return bool(monitor) and _enabled(monitor)


def _member(member, pool, verdicts):
    if not _enabled(member):
        return OFFLINE
    if not monitored(pool):
        return NO_MONITOR
    verdict = verdicts.get(member['member_id'])
    if verdict is None:
        return None
    return ONLINE if verdict else ERROR


def _pool(pool, members):
    if not _enabled(pool):
        return OFFLINE
    live = [members.get(m['member_id']) for m in pool.get('members', [])
            if _enabled(m)]
    failed = live.count(ERROR)
    if live and failed == len(live):
        return ERROR
    return DEGRADED if failed else ONLINE


def _listener_pools(listener):
    pools = {listener.get('default_pool_id')}
    pools |= {p.get('redirect_pool_id')
              for p in listener.get('l7policies', [])
              if _enabled(p) and p.get('rules')}
    pools.discard(None)
    return pools


def rollup(graph, verdicts):
    """``{(type, id): operating status}`` for the graph's objects.

    :param verdicts: ``{member_id: bool}`` (see ``member_health``).
    Members without a verdict are left out of the result.
    """
    result = {}
    members, pools = {}, {}
    used = set()
    for listener in graph.get('listeners', []):
        used |= _listener_pools(listener)
    for pool in graph.get('pools', []):
        if pool['pool_id'] not in used:
            pools[pool['pool_id']] = OFFLINE
            continue
        for member in pool.get('members', []):
            members[member['member_id']] = _member(member, pool, verdicts)
        pools[pool['pool_id']] = _pool(pool, members)
    listeners = {}
    for listener in graph.get('listeners', []):
        if not _enabled(listener):
            listeners[listener['listener_id']] = OFFLINE
            continue
        unwell = any(pools.get(p) in _UNWELL
                     for p in _listener_pools(listener))
        listeners[listener['listener_id']] = DEGRADED if unwell else ONLINE
    if not _enabled(graph):
        lb = OFFLINE
    elif any(s in _UNWELL for s in (*pools.values(), *listeners.values())):
        lb = DEGRADED
    else:
        lb = ONLINE
    result[('loadbalancer', graph['loadbalancer_id'])] = lb
    for kind, found in (('listener', listeners), ('pool', pools),
                        ('member', members)):
        for oid, status in found.items():
            if status is not None:
                result[(kind, oid)] = status
    return result


def overlay(status, graph, verdicts):
    """Put what health says into a status dict the agent is about to send.

    Records that carry an operating status get the rolled-up one; monitored
    members with a verdict get theirs even when the record had none (the
    agent does not know member health when it builds a record).
    """
    rolled = rollup(graph, verdicts)
    for otype, key in graphs.STATUS_KEYS.items():
        for record in status.get(key, []):
            found = rolled.get((otype, record['id']))
            if found is None or record.get('provisioning_status') == \
                    consts.DELETED:
                continue
            if 'operating_status' in record or otype == 'member':
                record['operating_status'] = found
    return status


def changes(graph, verdicts, shown):
    """Records of a status dict for what differs from ``shown``.

    :param shown: ``{(type, id): status}`` last sent; updated in place by
        the caller once Octavia accepted the update.
    :returns: ``(status dict, {(type, id): status})``; the dict is empty
        when nothing changed.
    """
    rolled = rollup(graph, verdicts)
    differ = {k: v for k, v in rolled.items() if shown.get(k) != v}
    status = {}
    for (otype, oid), value in sorted(differ.items()):
        status.setdefault(graphs.STATUS_KEYS[otype], []).append(
            {'id': oid, 'operating_status': value})
    return status, differ
