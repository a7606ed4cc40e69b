"""``multilb-manage lb sync`` and ``cluster sync``: re-apply on demand.

::

    multilb-manage ... lb sync LOADBALANCER_ID
    multilb-manage ... cluster sync NAME

The command records a ``sync`` intent per load balancer in the state store
(as the agent's own resync does when a cluster lost one); the agent that
owns the cluster applies the load balancer's whole configuration from
Octavia again within ``[multilb] poll_interval``. Nothing is reported to
Octavia and no status changes; objects the cluster refused stay held out
(an update, a delete or a failover of theirs retries them). What a cluster
holds that multilb did not place there is removed by the agent's orphan
sweep every ``resync_interval``, with or without this command.
"""

from __future__ import annotations

from multilb.cmd import arguments
from multilb.cmd import errors


def known_loadbalancer(ctx, lb_id):
    """The placement record of ``lb_id``; a CommandError naming what the
    id is instead when it is no load balancer of the store."""
    record = ctx.state.get_lb(lb_id)
    if record is None:
        found = ctx.state.lookup(lb_id)
        hint = ''
        if found and found[1] != 'loadbalancer':
            hint = ' (%s is a %s of load balancer %s)' % (
                lb_id, found[1], found[0])
        raise errors.CommandError('no load balancer %s in the multilb state '
                                  'store%s' % (lb_id, hint))
    return record


def _in_service(ctx, name, what):
    if name in ctx.rt.clusters.clusters:
        return
    why = ctx.rt.clusters.errors.get(name) or (
        'not in [multilb] enabled_clusters')
    raise errors.CommandError('%s cluster %s, which multilb cannot apply '
                              'to (%s); nothing was queued' % (what, name,
                                                               why))


def lb_sync(ctx, args):
    lb_id = args.id
    record = known_loadbalancer(ctx, lb_id)
    name = record['cluster']
    _in_service(ctx, name, 'load balancer %s is on' % lb_id)
    if not record.get('applied'):
        raise errors.CommandError(
            'load balancer %s has not been applied to cluster %s yet; its '
            'pending work applies it; nothing was queued' % (lb_id, name))
    ctx.state.add_sync(lb_id, record)
    pending = len(ctx.state.pending(name).get(lb_id, []))
    data = {'id': lb_id, 'cluster': name, 'queued': True,
            'pending_intents': pending}
    return data, ('re-apply of load balancer %s queued on cluster %s (%d '
                  'pending operation(s)); the agent owning the cluster '
                  'applies it, nothing is reported to Octavia\n' % (
                      lb_id, name, pending))


def cluster_sync(ctx, args):
    name = args.name
    if name not in ctx.configured() and not ctx.state.cluster_lb_ids(name):
        raise errors.CommandError(ctx.no_cluster(name))
    _in_service(ctx, name, 'the load balancers are on')
    queued, skipped = [], []
    for lb_id in sorted(ctx.state.cluster_lb_ids(name)):
        record = ctx.state.get_lb(lb_id)
        if not record or not record.get('applied'):
            skipped.append(lb_id)
            continue
        ctx.state.add_sync(lb_id, record)
        queued.append(lb_id)
    data = {'cluster': name, 'queued': queued, 'not_applied_yet': skipped}
    text = ('re-apply of %d load balancer(s) queued on cluster %s; the '
            'agent owning the cluster applies them, nothing is reported to '
            'Octavia\n' % (len(queued), name))
    if skipped:
        text += ('%d not applied yet (their pending work applies them): %s\n'
                 % (len(skipped), ', '.join(skipped)))
    return data, text


def add_parsers(cluster_actions, lb_actions, add_format, name_help):
    """Register ``cluster sync`` and ``lb sync`` (manage.build_parser)."""
    sub = cluster_actions.add_parser(
        'sync', help='re-apply every load balancer of a cluster from '
        "Octavia's configuration (no status change)")
    sub.add_argument('name', type=arguments.cluster_name, help=name_help)
    add_format(sub)
    sub.set_defaults(func=cluster_sync)
    sub = lb_actions.add_parser(
        'sync', help="re-apply a load balancer from Octavia's configuration "
        '(no status change)')
    sub.add_argument('id', metavar='LOADBALANCER_ID',
                     type=arguments.loadbalancer_id,
                     help='the Octavia id (a UUID) of the load balancer')
    add_format(sub)
    sub.set_defaults(func=lb_sync)
