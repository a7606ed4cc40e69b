"""Placement of a new load balancer: snapshot, schedule, reserve.

Runs in the API request (driver ``loadbalancer_create``). One prefix read
gives every cluster's load, operator state and health; the scheduler (pure)
orders the candidates; the reservation is one compare-and-swap commit, and a
lost race re-reads and decides again.
"""

from __future__ import annotations

import logging
import time

from backends import base as backend_base
from multilb import graph as graphs
from scheduler import cluster_state
from scheduler import manager as scheduler_manager

LOG = logging.getLogger(__name__)

ATTEMPTS = 20


def request_for(lb):
    """The :class:`PlacementRequest` of a create-time graph."""
    objects = graphs.checked_objects(lb)
    needs = set()
    for otype, fields in objects:
        needs |= backend_base.needs(otype, fields)
    return cluster_state.PlacementRequest(
        loadbalancer_id=lb['loadbalancer_id'],
        project_id=lb.get('project_id') or '',
        flavor=lb.get('flavor') or {},
        availability_zone=lb.get('availability_zone') or {},
        listeners=len(lb.get('listeners') or ()),
        needs=frozenset(needs),
        objects=objects)


def snapshot(rt, request, now=None):
    """``[ClusterState]`` of every valid enabled cluster."""
    now = time.time() if now is None else now
    runtime_info = rt.state.cluster_runtime()
    project = rt.state.project_counts(request.project_id)
    stale_after = 3 * rt.conf.multilb.health_interval
    states = []
    for name, cluster in sorted(rt.clusters.clusters.items()):
        info = runtime_info.get(name, {})
        health = info.get('health') or {}
        breaker = info.get('breaker') or {}
        healthy = None
        fresh = bool(health) and now - health.get('at', 0) <= stale_after
        if fresh:
            healthy = bool(health.get('reachable'))
        # Open or half-open (a trial running): no new load balancers. A
        # record nobody refreshed (no agent owns the cluster) is ignored.
        breaker_open = (fresh and bool(health.get('breaker_open'))) or (
            breaker.get('state', 'closed') != 'closed'
            and now - breaker.get('at', 0) <= stale_after)
        states.append(cluster_state.ClusterState(
            name=name, backend=cluster.backend,
            max_loadbalancers=cluster.max_loadbalancers,
            placed=info.get('placed', 0), tags=cluster.tags,
            listeners=info.get('listeners', 0),
            max_listeners=cluster.max_listeners,
            projects=cluster.projects,
            draining=bool((info.get('admin') or {}).get('draining')),
            healthy=healthy,
            breaker_open=breaker_open,
            recent_errors=int(health.get('recent_errors', 0)),
            project_placed=project.get(name, (0, None))[0],
            capabilities=cluster.backend_class.capabilities(),
            check_supported=cluster.backend_class.check_supported))
    return states, runtime_info, project


class Placer:
    """Schedules and reserves; one per process (it holds loaded plugins)."""

    def __init__(self, rt):
        self.rt = rt
        self.scheduler = scheduler_manager.ClusterScheduler(rt.conf)

    def place(self, lb, record_extra=None, allowed=None, reserve=None):
        """Place the create-time graph ``lb``; return the chosen cluster name.

        :param allowed: names of the only clusters that may take it (None:
            any).
        :param reserve: ``f(cluster) -> (checks, puts, record fields)``:
            reservations made in the placement's commit on the chosen
            cluster; may raise to refuse the request.
        :raises multilb.exceptions.NoValidCluster: nothing can take it.
        :raises RuntimeError: every attempt lost a race.
        """
        request = request_for(lb)
        lb_id = request.loadbalancer_id
        for _attempt in range(ATTEMPTS):
            states, runtime_info, project = snapshot(self.rt, request)
            if allowed is not None:
                states = [s for s in states if s.name in allowed]
            ordered = self.scheduler.select(request, states)
            best = ordered[0]
            cluster = self.rt.clusters.clusters[best.name]
            info = runtime_info.get(best.name, {})
            record = {'id': lb_id, 'cluster': best.name,
                      'project_id': request.project_id,
                      'flavor': dict(request.flavor),
                      'availability_zone': dict(request.availability_zone),
                      'created_at': time.time(),
                      'pools': graphs.pool_members(lb)}
            record.update(record_extra or {})
            checks, puts = {}, {}
            if reserve is not None:
                checks, puts, fields = reserve(cluster)
                record.update(fields)
            intent = {'op': 'create', 'type': 'loadbalancer', 'id': lb_id,
                      'project': request.project_id}
            if self.rt.state.place_loadbalancer(
                    record, cluster.max_loadbalancers,
                    (info.get('placed', 0), info.get('version')), intent,
                    {lb_id: 'loadbalancer'},
                    project_count=project.get(best.name, (0, None)),
                    reserve=(checks, puts)):
                LOG.info('Placed load balancer %s of project %s on cluster '
                         '%s (%d placed before)', lb_id, request.project_id,
                         best.name, best.placed)
                return best.name
        raise RuntimeError('placement of %s lost %d races in a row' % (
            lb_id, ATTEMPTS))


def leave_reason(rt, name, now=None):
    """Why a load balancer on cluster ``name`` should move away when
    Octavia fails it over (draining, retired, breaker open, unreachable),
    or None to fail it over in place."""
    now = time.time() if now is None else now
    info = rt.state.cluster_runtime().get(name, {})
    admin, health = info.get('admin') or {}, info.get('health') or {}
    breaker = info.get('breaker') or {}
    stale_after = 3 * rt.conf.multilb.health_interval
    fresh = bool(health) and now - health.get('at', 0) <= stale_after
    if admin.get('retired'):
        return 'cluster %s is retired' % name
    if admin.get('draining'):
        return 'cluster %s is draining' % name
    if fresh and health.get('breaker_open') or (
            breaker.get('state', 'closed') != 'closed'
            and now - breaker.get('at', 0) <= stale_after):
        return 'the circuit breaker of cluster %s is open' % name
    if fresh and not health.get('reachable'):
        return 'cluster %s is unreachable' % name
    return None


def move_target(rt, record, to=None):
    """The cluster a placed load balancer (its ``record``) moves to: the
    scheduler's choice among the other clusters, with the load balancer's
    stored flavor and availability zone, and only clusters that serve its
    VIP pool. ``to``: consider that cluster only (the filters still say
    why it cannot take it).

    The record keeps no graph, so the capabilities a load balancer needs
    are not checked here: the target's worker checks them against the
    graph before it writes anything, and the move fails naming what the
    target's backend lacks.

    :raises multilb.exceptions.NoValidCluster: no cluster can take it.
    """
    request = cluster_state.PlacementRequest(
        loadbalancer_id=record['id'],
        project_id=record.get('project_id') or '',
        flavor=record.get('flavor') or {},
        availability_zone=record.get('availability_zone') or {},
        listeners=int(record.get('listeners') or 0), needs=frozenset())
    states, _info, _project = snapshot(rt, request)
    pool = (record.get('vip') or {}).get('pool')
    states = [s for s in states if s.name != record['cluster']
              and (to is None or s.name == to)
              and (pool is None
                   or pool in rt.clusters.clusters[s.name].vip_pools)]
    return rt.placer.scheduler.select(request, states)[0].name


# Filter that removed the last candidates -> what the tenant is told.
_USER_TEXT = {
    'CapacityFilter': 'No appliance cluster has room for a new load '
                      'balancer',
    'FlavorFilter': 'No appliance cluster matches the flavor of this load '
                    'balancer',
    'AvailabilityZoneFilter': 'No appliance cluster serves the requested '
                              'availability zone',
    'DrainFilter': 'No appliance cluster for this request is in service '
                   'right now',
    'HealthFilter': 'No appliance cluster for this request is in service '
                    'right now',
    'DedicatedClusterFilter': 'No appliance cluster is available to this '
                              'project',
    'TenantShardFilter': 'No appliance cluster is available to this project',
}


def unsupported_message(exc):
    """What the capabilities filter found missing, for the tenant."""
    return '; '.join(why for name, _cluster, why in exc.reasons
                     if name == 'CapabilitiesFilter')


def no_valid_cluster_message(rt, exc):
    """``(user text, operator text)`` for a NoValidCluster."""
    lines = ['%s: %s: %s' % reason for reason in exc.reasons]
    lines += ['%s: %s' % (n, e) for n, e in sorted(rt.clusters.errors.items())]
    operator = '; '.join(lines) or 'no cluster is enabled'
    if not rt.clusters.clusters:
        user = 'No appliance cluster is in service'
    else:
        user = _USER_TEXT.get(exc.last_filter,
                              'No appliance cluster can take this load '
                              'balancer')
    return (user + '; nothing was created. Please contact your cloud '
            'operator.'), operator
