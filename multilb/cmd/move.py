"""``multilb-manage lb move``, ``cluster evacuate`` and ``cluster retire``.

::

    multilb-manage ... lb move LOADBALANCER_ID [--to CLUSTER] [--no-wait]
    multilb-manage ... cluster evacuate NAME [--to CLUSTER]
                       [--concurrency N] [--dry-run]
    multilb-manage ... cluster retire NAME [--concurrency N]

The command records each move in the state store (:mod:`multilb.moves`);
the agent that owns the target cluster performs it make-before-break (the
command has neither Octavia's sockets nor the TLS material) and the
command follows its progress. Targets come from the scheduler with the
load balancer's flavor and availability zone (``--to``: that cluster,
if its filters let it take the load balancer). Octavia sees nothing: no
PENDING state, no status change.

``evacuate`` drains the cluster first (no new load balancer lands on it),
then keeps ``--concurrency`` moves running until every load balancer has
left; ``retire`` evacuates, then checks that the cluster holds nothing
(no placement, no pending work, no status update waiting, nothing on the
appliance) and says that it can leave the configuration.
"""

from __future__ import annotations

import argparse
import sys
import time

from multilb.cmd import arguments
from multilb.cmd import errors
from multilb.cmd import format as fmt
from multilb.cmd import sync
from multilb.cmd import who
from multilb import exceptions
from multilb import moves as moves_mod
from multilb import placement

_POLL = 0.25


def _percentile(values, fraction):
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(
        fraction * (len(ordered) - 1))))]


def _target(ctx, record, to):
    if to is not None and to not in ctx.rt.clusters.clusters:
        raise errors.CommandError(ctx.no_cluster(to, ' to move to'))
    try:
        return placement.move_target(ctx.rt, record, to)
    except exceptions.NoValidCluster as exc:
        raise errors.CommandError('load balancer %s cannot move%s: %s' % (
            record['id'], ' to %s' % to if to else '', '; '.join(
                '%s: %s' % (c, why) for _f, c, why in exc.reasons)
            or 'no other cluster is enabled')) from None


def _start(ctx, record, to, reason=''):
    """Start one move; ``(target, None)`` or ``(None, why not)``."""
    target = _target(ctx, record, to)
    limit = ctx.rt.clusters.clusters[target].max_loadbalancers
    try:
        moves_mod.Moves(ctx.state).start(record['id'], target, limit,
                                         who.changed_by(), reason=reason)
    except ValueError as exc:
        return None, str(exc)
    return target, None


class Follower:
    """Follows moves until each ended: ``moved`` or ``failed``."""

    def __init__(self, ctx, timeout, out=sys.stderr):
        self.moves = moves_mod.Moves(ctx.state)
        self.ctx = ctx
        self.timeout = timeout
        self.out = out
        self.running = {}     # lb id -> (target, started monotonic)
        self.done = {}        # lb id -> result dict

    def add(self, lb_id, source, target):
        self.running[lb_id] = (source, target, time.monotonic())

    def poll(self):
        """Read every running move once; return how many ended."""
        ended = 0
        for lb_id, (source, target, started) in list(self.running.items()):
            move = self.moves.get(lb_id)
            record = self.ctx.state.get_lb(lb_id)
            elapsed = time.monotonic() - started
            result = None
            if move is None or move.get('target') != target:
                if record is not None and record.get('cluster') == target:
                    result = {'status': 'moved'}
                elif record is None:
                    result = {'status': 'failed',
                              'error': 'the load balancer was deleted'}
            elif move.get('phase') == moves_mod.FAILED:
                result = {'status': 'failed', 'error': move.get('error')}
            elif elapsed > self.timeout:
                result = {'status': 'timeout', 'error': (
                    'still %s after %.0fs (the agent goes on)' % (
                        move['phase'], elapsed))}
            if result is not None:
                result.update(id=lb_id, source=source, target=target,
                              seconds=round(elapsed, 3))
                self.done[lb_id] = result
                del self.running[lb_id]
                ended += 1
        return ended

    def progress(self, total):
        if not self.out.isatty() and total <= 1:
            return
        moved = sum(1 for r in self.done.values() if r['status'] == 'moved')
        width = 30
        filled = int(width * len(self.done) / total) if total else width
        self.out.write('\r[%s%s] %d/%d moved, %d failed, %d running ' % (
            '#' * filled, '-' * (width - filled), moved, total,
            len(self.done) - moved, len(self.running)))
        self.out.flush()


def lb_move(ctx, args):
    record = sync.known_loadbalancer(ctx, args.id)
    source = record['cluster']
    target, why = _start(ctx, record, args.to)
    if target is None:
        raise errors.CommandError('load balancer %s cannot move: %s; '
                                  'nothing was changed' % (args.id, why))
    data = {'id': args.id, 'source': source, 'target': target,
            'status': 'queued'}
    if not args.no_wait:
        follower = Follower(ctx, args.timeout, out=_Quiet())
        follower.add(args.id, source, target)
        while follower.running:
            time.sleep(_POLL)
            follower.poll()
        data = follower.done[args.id]
        if data['status'] != 'moved':
            raise errors.CommandError(
                'move of load balancer %s from %s to %s %s: %s' % (
                    args.id, source, target, data['status'], data['error']),
                errors.EXIT_FAILURE)
    text = ('Load balancer %s: %s from cluster %s to %s%s.\n' % (
        args.id, 'move queued' if data['status'] == 'queued' else 'moved',
        source, target, ' in %.1fs' % data['seconds']
        if 'seconds' in data else ' (the agent owning %s performs it; '
        'follow it with: lb show %s)' % (target, args.id)))
    return data, text


class _Quiet:
    def write(self, _text):
        pass

    def flush(self):
        pass

    def isatty(self):
        return False


def _known(ctx, name):
    if name not in ctx.rt.clusters.clusters:
        raise errors.CommandError(ctx.no_cluster(name, ' in service'))


def evacuate(ctx, name, to=None, concurrency=4, dry_run=False,
             timeout=None, reason='evacuating'):
    """Drain ``name`` and move each of its load balancers away; return
    ``(results, plan)``."""
    _known(ctx, name)
    if to == name:
        raise errors.CommandError('--to names the cluster being evacuated')
    lb_ids = sorted(ctx.state.cluster_lb_ids(name))
    if dry_run:
        plan = []
        for lb_id in lb_ids:
            record = ctx.state.get_lb(lb_id)
            try:
                target = _target(ctx, record, to) if record else None
                plan.append({'id': lb_id, 'target': target})
            except errors.CommandError as exc:
                plan.append({'id': lb_id, 'target': None,
                             'error': str(exc)})
        return [], plan
    ctx.state.set_admin(name, draining=True, reason=reason,
                        by=who.changed_by())
    follower = Follower(ctx, timeout or (
        ctx.rt.conf.multilb.move_timeout + 60))
    queue = list(lb_ids)
    total = len(queue)
    while queue or follower.running:
        while queue and len(follower.running) < concurrency:
            lb_id = queue.pop(0)
            record = ctx.state.get_lb(lb_id)
            if record is None or record['cluster'] != name:
                total -= 1       # deleted or moved meanwhile
                continue
            try:
                target, why = _start(ctx, record, to, reason=reason)
            except errors.CommandError as exc:
                target, why = None, str(exc)
            if target is None:
                follower.done[lb_id] = {'id': lb_id, 'source': name,
                                        'target': None, 'status': 'failed',
                                        'error': why, 'seconds': 0.0}
                continue
            follower.add(lb_id, name, target)
        follower.progress(total)
        time.sleep(_POLL)
        follower.poll()
    follower.progress(total)
    if total:
        follower.out.write('\n')
    return sorted(follower.done.values(), key=lambda r: r['id']), None


def _summary(name, results):
    moved = [r for r in results if r['status'] == 'moved']
    times = [r['seconds'] for r in moved]
    return {'cluster': name, 'moved': len(moved),
            'failed': len(results) - len(moved),
            'move_seconds_p50': _percentile(times, 0.5),
            'move_seconds_p99': _percentile(times, 0.99),
            'loadbalancers': results}


def _results_text(summary):
    rows = [[r['id'], r['target'] or '-', r['status'],
             '%.1f' % r['seconds'], r.get('error') or '']
            for r in summary['loadbalancers']]
    text = fmt.table(['LOAD BALANCER', 'TARGET', 'RESULT', 'SECONDS',
                      'ERROR'], rows) if rows else ''
    text += '%d moved, %d failed' % (summary['moved'], summary['failed'])
    if summary['move_seconds_p50'] is not None:
        text += '; move time p50 %.1fs, p99 %.1fs' % (
            summary['move_seconds_p50'], summary['move_seconds_p99'])
    return text + '\n'


def cluster_evacuate(ctx, args):
    results, plan = evacuate(ctx, args.name, args.to, args.concurrency,
                             args.dry_run, args.timeout)
    if plan is not None:
        rows = [[p['id'], p['target'] or '-', p.get('error', '')]
                for p in plan]
        text = (fmt.table(['LOAD BALANCER', 'WOULD MOVE TO', 'PROBLEM'],
                          rows) if rows else '') + (
            'Dry run: %d load balancer(s) on cluster %s; nothing was '
            'changed.\n' % (len(plan), args.name))
        return {'cluster': args.name, 'dry_run': True, 'plan': plan}, text
    summary = _summary(args.name, results)
    if summary['failed']:
        sys.stdout.write(_results_text(summary))
        raise errors.CommandError(
            'cluster %s: %d load balancer(s) could not move; the cluster '
            'stays drained, run evacuate again once fixed' % (
                args.name, summary['failed']), errors.EXIT_FAILURE)
    return summary, _results_text(summary) + (
        'Cluster %s is drained and holds no load balancer.\n' % args.name)


def _leftovers(ctx, name):
    """What still ties ``name`` to the fleet: ``[problem, ...]``."""
    state = ctx.state
    found = []
    placed = state.cluster_lb_ids(name)
    if placed:
        found.append('%d load balancer(s) placed on it' % len(placed))
    pending = state.pending(name)
    if pending:
        found.append('pending work for %d load balancer(s)' % len(pending))
    outbox = state.outbox_entries(name)
    if outbox:
        found.append('%d status update(s) not delivered' % len(outbox))
    cluster = ctx.rt.clusters.clusters[name]
    backend = cluster.backend_class(cluster)
    try:
        backend.start()
        held = backend.list_loadbalancer_ids()
    except Exception as exc:  # noqa: B902 - reported, never a traceback
        found.append('its appliance cannot be listed: %s' % exc)
    else:
        if held:
            found.append('the appliance still holds %d load balancer(s) '
                         '(the agent\'s orphan sweep removes them)' % len(
                             held))
    finally:
        backend.stop()
    return found


def cluster_retire(ctx, args):
    name = args.name
    results, _plan = evacuate(ctx, name, None, args.concurrency,
                              timeout=args.timeout, reason='retiring')
    ctx.state.set_admin(name, retired=True, by=who.changed_by())
    summary = _summary(name, results)
    leftovers = _leftovers(ctx, name)
    summary['leftovers'] = leftovers
    text = _results_text(summary)
    if summary['failed'] or leftovers:
        sys.stdout.write(text)
        raise errors.CommandError(
            'cluster %s is drained but cannot leave the configuration yet: '
            '%s; run retire again' % (name, '; '.join(leftovers) or
                                      '%d move(s) failed' %
                                      summary['failed']),
            errors.EXIT_FAILURE)
    return summary, text + (
        'Cluster %s holds nothing: remove it from [multilb] '
        'enabled_clusters and delete its [cluster:%s] section, on every '
        'host, then restart octavia-api and the driver agent.\n' % (
            name, name))


def _at_least_one(text):
    """argparse type of ``--concurrency``: 0 would never start a move."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError('%r is not a whole number of at '
                                         'least 1' % text)
    return value


def add_parsers(cluster_actions, lb_actions, add_format, name_help):
    timeout_help = ('seconds to follow each move (default: [multilb] '
                    'move_timeout + 60); the agent goes on after that')
    sub = lb_actions.add_parser(
        'move', help='move a load balancer to another cluster, '
        'make-before-break, without Octavia seeing it')
    sub.add_argument('id', metavar='LOADBALANCER_ID',
                     type=arguments.loadbalancer_id,
                     help='the Octavia id (a UUID) of the load balancer')
    sub.add_argument('--to', metavar='CLUSTER', type=arguments.cluster_name,
                     help='the target cluster (default: the scheduler '
                     'chooses)')
    sub.add_argument('--no-wait', action='store_true',
                     help='queue the move and return')
    sub.add_argument('--timeout', type=float, default=600.0,
                     help='seconds to wait for the move (default 600)')
    add_format(sub)
    sub.set_defaults(func=lb_move)
    for action, func, helptext in (
            ('evacuate', cluster_evacuate, 'drain a cluster and move every '
             'load balancer off it, make-before-break'),
            ('retire', cluster_retire, 'evacuate a cluster, check that it '
             'holds nothing, and say it can leave the configuration')):
        sub = cluster_actions.add_parser(action, help=helptext)
        sub.add_argument('name', type=arguments.cluster_name,
                         help=name_help)
        if action == 'evacuate':
            sub.add_argument('--to', metavar='CLUSTER',
                             type=arguments.cluster_name,
                             help='move everything to this cluster '
                             '(default: the scheduler chooses per load '
                             'balancer)')
            sub.add_argument('--dry-run', action='store_true',
                             help='show where each load balancer would go; '
                             'change nothing')
        sub.add_argument('--concurrency', type=_at_least_one, default=4,
                         help='moves running at once (default 4, at least '
                         '1)')
        sub.add_argument('--timeout', type=float, default=None,
                         help=timeout_help)
        add_format(sub)
        sub.set_defaults(func=func)
