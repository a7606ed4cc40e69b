"""One cluster as ``multilb-manage`` shows it: state, load, health, circuit
breaker, pending work, and what needs the operator's attention (the data;
:mod:`multilb.cmd.format` turns it into text).

A cluster needs attention (``cluster list`` exits 3, see
:data:`ATTENTION`) when its section is broken, when it is no longer
configured but load balancers or work are still recorded on it, or when no
agent vouches for it: its last probe found it unreachable, that probe is
stale (older than three ``health_interval``\\ s: no agent probes it any
more), it was never probed (no agent drives it yet, e.g. in the first
``health_interval`` after the agents start), or its circuit breaker is
open. It also does when agents are running but none of them can drive it
(``no-agent``: no live agent has it, valid, in its ``enabled_clusters``,
e.g. half-way through a rolling configuration change). A draining
cluster that is otherwise fine does not.
"""

from __future__ import annotations

from oslo_config import cfg

from multilb.cmd import format as fmt
from multilb.conf import clusters as cluster_conf

# the reasons of a cluster's "attention" list, in the order given
ATTENTION = ('config-error', 'not-configured', 'no-agent', 'unreachable',
             'stale', 'never-probed', 'breaker-open')


def raw_backend(conf, name):
    """The backend a broken section names, if it can be read at all."""
    for group in (cluster_conf.section(name), cluster_conf.DEFAULTS_GROUP):
        try:
            value = conf[group].backend
        except (cfg.Error, AttributeError, KeyError, ValueError):
            return None
        if value:
            return value
    return None


def health(ctx, record):
    found = {'status': 'unknown', 'detail': None, 'at': None,
             'age_seconds': None, 'stale': None, 'breaker_open': None,
             'recent_errors': None}
    if not record:
        return found
    at = record.get('at')
    age = round(max(0.0, ctx.now - at), 1) if at else None
    found.update(
        status='ok' if record.get('reachable') else 'unreachable',
        detail=record.get('detail') or record.get('error') or None,
        at=fmt.iso(at), age_seconds=age,
        stale=age is None or age > ctx.stale_after,
        breaker_open=bool(record.get('breaker_open')),
        recent_errors=int(record.get('recent_errors') or 0))
    return found


def breaker(ctx, record):
    """The cluster's circuit breaker as its owning agent last shared it."""
    found = {'state': 'closed', 'opened_at': None, 'last_error': None,
             'failures': 0, 'at': None, 'stale': None}
    if not record:
        return found
    at = record.get('at')
    found.update(
        state=record.get('state') or 'closed',
        opened_at=fmt.iso(record.get('opened_at')),
        last_error=record.get('last_error') or None,
        failures=int(record.get('failures') or 0), at=fmt.iso(at),
        stale=at is None or ctx.now - at > ctx.stale_after)
    return found


def attention(row):
    """Why the cluster of ``row`` (a :func:`summary`) needs the operator:
    a list of :data:`ATTENTION` reasons, empty when it is fine."""
    if row['state'] in ('config-error', 'not-configured'):
        return [row['state']]
    found = ['no-agent'] if row.get('agents') == 0 else []
    seen = row['health']
    if seen['status'] == 'unknown':
        found.append('never-probed')
    else:
        if seen['status'] == 'unreachable':
            found.append('unreachable')
        if seen['stale']:
            found.append('stale')
    if (seen['breaker_open'] and not seen['stale']) or (
            row['breaker']['state'] != 'closed'
            and not row['breaker']['stale']):
        found.append('breaker-open')
    return found


def summary(ctx, name, info):
    """One cluster as ``cluster list`` shows it (stable keys)."""
    rt = ctx.rt
    cluster = rt.clusters.clusters.get(name)
    error = rt.clusters.errors.get(name)
    admin = info.get('admin') or {}
    draining = bool(admin.get('draining'))
    placed = int(info.get('placed') or 0)
    if error:
        state = 'config-error'
    elif cluster is None:
        state = 'not-configured'
        error = ('not in [multilb] enabled_clusters; its %d load '
                 'balancer(s) can only be deleted, and deleting one does '
                 'not remove it from the appliance: add the cluster back '
                 'to manage them, or remove them from the appliance '
                 'yourself' % placed)
    else:
        state = 'draining' if draining else 'active'
    pending = ctx.state.pending(name)
    outbox = [entry for _key, entry in ctx.state.outbox(name)]
    row = {
        'name': name,
        'backend': cluster.backend if cluster else raw_backend(rt.conf,
                                                               name),
        'state': state,
        'error': error,
        'draining': draining,
        'admin': {'draining': draining,
                  'reason': admin.get('reason') or None,
                  'changed_by': admin.get('by'),
                  'changed_at': fmt.iso(admin.get('at'))},
        'placed': placed,
        'max_loadbalancers': cluster.max_loadbalancers if cluster else None,
        'health': health(ctx, info.get('health')),
        'breaker': breaker(ctx, info.get('breaker')),
        'pending_intents': sum(len(i) for i in pending.values()),
        'pending_loadbalancers': len(pending),
        'outbox': len(outbox),
        'outbox_failing': sum(1 for e in outbox if e.get('delivery')),
    }
    row['attention'] = attention(row)
    return row


def add_agents(rows, view):
    """Set each row's ``agents``: how many live agents can drive the
    cluster (:func:`multilb.coordination.drivers`), None when unknown
    (no agent is running, or the agents' group cannot be read), and add
    ``no-agent`` to its attention when none can."""
    from multilb import coordination   # tooz: see agents.agents_list
    for row in rows:
        if not view or row['state'] in ('config-error', 'not-configured'):
            row['agents'] = None
            continue
        row['agents'] = len(coordination.drivers(row['name'], view))
        row['attention'] = attention(row)


def attention_notice(rows):
    """The line ``cluster list`` writes to stderr when it exits 3, or
    None when every cluster is fine."""
    needy = [r for r in rows if r['attention']]
    if not needy:
        return None
    return '%d cluster(s) need attention: %s' % (len(needy), ', '.join(
        '%s (%s)' % (r['name'], ', '.join(r['attention'])) for r in needy))
