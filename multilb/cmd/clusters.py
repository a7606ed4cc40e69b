"""``multilb-manage cluster list``, ``cluster show``, ``cluster drain`` and
``cluster undrain``: the fleet's clusters and the operator's drain.

::

    multilb-manage ... cluster list
    multilb-manage ... cluster show NAME
    multilb-manage ... cluster drain NAME [--reason TEXT]
    multilb-manage ... cluster undrain NAME

What a cluster row holds, and when a cluster needs attention (``cluster
list`` exits 3 then): :mod:`multilb.cmd.views`. Drain and undrain write
``cluster/<name>/admin`` with who did it (:func:`multilb.cmd.who.
changed_by`); every API worker reads it on its next placement.
"""

from __future__ import annotations

from multilb.cmd import arguments
from multilb.cmd import errors
from multilb.cmd import format as fmt
from multilb.cmd import views
from multilb.cmd import who
from multilb import exceptions

NAME_HELP = 'a cluster name, as in [multilb] enabled_clusters'


def cluster_list(ctx, args):
    runtime_info = ctx.state.cluster_runtime()
    rows = [views.summary(ctx, name, runtime_info.get(name, {}))
            for name in ctx.configured()]
    for name in sorted(set(runtime_info) - set(ctx.configured())):
        row = views.summary(ctx, name, runtime_info[name])
        # A counter back at 0 is all a removed cluster leaves behind.
        if row['placed'] or row['pending_intents'] or row['outbox']:
            rows.append(row)
    view, unread = _agents_view(ctx)
    views.add_agents(rows, view)
    ctx.notice = '; '.join(n for n in (views.attention_notice(rows), unread)
                           if n) or None
    if ctx.notice:
        ctx.exit_code = errors.EXIT_ATTENTION
    return rows, fmt.clusters_table(rows)


def _agents_view(ctx):
    """``(view, None)``: the live agents and their capabilities; or
    ``(None, why)`` when the agents' group cannot be read: the no-agent
    check is then not made, and ``cluster list`` says so (exit 3)."""
    from multilb import coordination   # tooz: see agents.agents_list
    try:
        return coordination.live_agents(
            ctx.rt.conf.multilb.coordination_url,
            with_capabilities=True), None
    except (exceptions.StoreUnavailable, exceptions.ConfigError) as exc:
        return None, ("the agents' group could not be read (%s): clusters "
                      "no live agent can drive are not flagged" % exc)


def cluster_show(ctx, args):
    name = args.name
    runtime_info = ctx.state.cluster_runtime()
    if name not in ctx.configured() and name not in runtime_info:
        raise errors.CommandError(ctx.no_cluster(name))
    row = views.summary(ctx, name, runtime_info.get(name, {}))
    cluster = ctx.rt.clusters.clusters.get(name)
    row.update(description=cluster.description if cluster else None,
               tags=sorted(cluster.tags) if cluster else [],
               projects=sorted(cluster.projects) if cluster else [])
    pending = ctx.state.pending(name)
    lbs = []
    for lb_id in sorted(ctx.state.cluster_lb_ids(name)):
        record = ctx.state.get_lb(lb_id) or {}
        lbs.append({'id': lb_id, 'project_id': record.get('project_id'),
                    'created_at': fmt.iso(record.get('created_at')),
                    'pending_intents': len(pending.get(lb_id, ()))})
    row['loadbalancers'] = lbs
    return row, fmt.cluster_text(row)


def cluster_set_draining(ctx, args):
    name, draining = args.name, args.action == 'drain'
    if name not in ctx.configured():
        raise errors.CommandError(ctx.no_cluster(
            name, ' in [multilb] enabled_clusters'))
    admin = ctx.state.cluster_runtime().get(name, {}).get('admin') or {}
    was = bool(admin.get('draining'))
    reason = getattr(args, 'reason', None)
    if was != draining:
        ctx.state.set_admin(name, draining=draining,
                            reason=reason if draining else None,
                            by=who.changed_by())
    elif draining and reason is not None and reason != admin.get('reason'):
        ctx.state.set_admin(name, reason=reason, by=who.changed_by())
    row = views.summary(ctx, name, ctx.state.cluster_runtime().get(name, {}))
    row['changed'] = was != draining
    if not row['changed']:
        message = 'cluster %s was already %s; nothing changed' % (
            name, 'draining' if draining else 'in service (not draining)')
        if draining and reason is not None and reason != admin.get('reason'):
            message = ('cluster %s was already draining; reason updated'
                       % name)
    elif draining:
        message = ('cluster %s is now draining: no new load balancer will '
                   'be placed on it; its %d load balancer(s) stay fully '
                   'manageable' % (name, row['placed']))
    else:
        message = ('cluster %s is back in service: new load balancers may '
                   'be placed on it' % name)
    return row, message + '\n\n' + fmt.clusters_table([row])


def add_parsers(cluster_actions):
    """Register ``cluster list``, ``show``, ``drain`` and ``undrain``
    (manage.build_parser)."""
    sub = cluster_actions.add_parser(
        'list', help='every cluster: state, load, health, pending work',
        description='Every cluster of [multilb] enabled_clusters, and '
        'removed ones that still hold work. Exit 3 (after the full output) '
        'when a cluster needs attention: its section is broken '
        '(config-error), it was removed but load balancers or work are left '
        'on it (not-configured), agents run but none has it in its '
        'enabled_clusters (no-agent), its last probe found it unreachable, no '
        'agent probed it for three health_interval (stale) or ever '
        '(never-probed), or its circuit breaker is open (breaker-open); the '
        'reasons are in each cluster\'s "attention" (json) and on stderr. '
        'A draining cluster is fine.')
    arguments.add_format(sub)
    sub.set_defaults(func=cluster_list)
    sub = cluster_actions.add_parser(
        'show', help='one cluster and the load balancers placed on it')
    sub.add_argument('name', type=arguments.cluster_name, help=NAME_HELP)
    arguments.add_format(sub)
    sub.set_defaults(func=cluster_show)
    sub = cluster_actions.add_parser(
        'drain', help='place no new load balancer on a cluster (existing '
        'ones stay fully manageable); takes effect at once everywhere')
    sub.add_argument('name', type=arguments.cluster_name, help=NAME_HELP)
    sub.add_argument('--reason', metavar='TEXT',
                     help='why, shown by cluster list and cluster show')
    arguments.add_format(sub)
    sub.set_defaults(func=cluster_set_draining)
    sub = cluster_actions.add_parser(
        'undrain', help='put a drained cluster back in service')
    sub.add_argument('name', type=arguments.cluster_name, help=NAME_HELP)
    arguments.add_format(sub)
    sub.set_defaults(func=cluster_set_draining)
