"""``multilb-manage store rebuild``: placement records from the clusters.

::

    multilb-manage ... store rebuild [--id LOADBALANCER_ID]...
                                     [--assign LOADBALANCER_ID=CLUSTER]...
                                     [--dry-run]

A best effort after the state store was lost (no backup, or a backup older
than the fleet). The command lists what every valid cluster of ``[multilb]
enabled_clusters`` holds (``list_loadbalancer_ids`` of its backend), asks
Octavia for the graph of each load balancer through Octavia's driver agent
(its sockets, from ``[driver_agent]`` of the same configuration files: run
it on a controller where ``octavia-driver-agent`` runs) and records each
one Octavia knows and exactly one cluster holds (:mod:`multilb.rebuild`;
a record the store has is kept). It reports what it cannot recover:
orphans (a cluster holds them, Octavia does not know them: the agent's
orphan sweep removes them), load balancers held by several clusters, ids
given with ``--id`` that no cluster holds, and what no record gets
(:data:`multilb.rebuild.LOST`). ``--assign`` records a load balancer on a
cluster the operator chooses; when that cluster does not list it, a
re-apply is queued so that the agent applies it there.

Exit codes: 0 everything listed and asked, and every load balancer Octavia
knows has a record; 1 a cluster could not be listed, Octavia could not be
asked, or a load balancer Octavia knows is still without a record (the
report is printed first); 2 usage.
"""

from __future__ import annotations

import logging
import os
import sys

from multilb.cmd import arguments
from multilb.cmd import errors
from multilb.cmd import format as fmt
from multilb import octavia
from multilb import rebuild
from multilb import redact

LOG = logging.getLogger(__name__)

ORPHAN, SEVERAL, NOWHERE = 'orphan', 'held-by-several', 'placed-nowhere'
UNKNOWN, NOT_ASKED = 'unknown', 'not-asked'
OUTCOMES = (rebuild.RECOVERED, rebuild.WOULD_RECOVER, rebuild.KEPT, ORPHAN,
            SEVERAL, NOWHERE, UNKNOWN, NOT_ASKED)
UNRESOLVED = (SEVERAL, NOWHERE, NOT_ASKED)   # exit 1


def octavia_client(conf):
    """An :class:`multilb.octavia.OctaviaClient` over the sockets named in
    ``[driver_agent]`` of ``conf``; a CommandError when they are missing."""
    octavia.register_socket_opts(conf)
    paths = octavia.socket_paths(conf)
    missing = sorted(p for p in paths.values() if not os.path.exists(p))
    if missing:
        raise errors.CommandError(
            "cannot ask Octavia: the driver agent's socket(s) %s are missing; "
            'run store rebuild on a controller where octavia-driver-agent '
            'runs, with its configuration files (paths from [driver_agent]); '
            'nothing was written' % ', '.join(missing), errors.EXIT_FAILURE)
    return octavia.OctaviaClient(paths=paths)


def _secrets(cluster):
    """Secrets of the URLs among a cluster's options (endpoints...)."""
    found = set()
    for value in cluster.options.values():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, str):
                found.update(redact.secrets_of(item))
    return sorted(found, key=len, reverse=True)


def list_cluster(cluster):
    """The ids ``cluster`` holds (its backend's listing, no breaker)."""
    backend = cluster.backend_class(cluster)
    backend.breaker = None
    try:
        backend.start()
        return set(backend.list_loadbalancer_ids())
    finally:
        backend.stop()


def _listings(ctx):
    """``(cluster rows, {lb id: [clusters holding it]})``."""
    rows, held = [], {}
    for name in ctx.configured():
        cluster = ctx.rt.clusters.clusters.get(name)
        row = {'name': name, 'listed': None, 'error': None}
        rows.append(row)
        if cluster is None:
            row['error'] = 'configuration error: %s' % (
                ctx.rt.clusters.errors[name])
            continue
        try:
            ids = list_cluster(cluster)
        except Exception as exc:  # noqa: B902 - any failure is reported
            row['error'] = 'cannot list its load balancers: %s' % (
                redact.scrub(exc, _secrets(cluster)))
            continue
        row['listed'] = len(ids)
        for lb_id in ids:
            held.setdefault(lb_id, []).append(name)
    return rows, held


def _assignments(ctx, pairs):
    found = {}
    for pair in pairs:
        lb_id, sep, name = pair.partition('=')
        if not (sep and lb_id and name):
            raise errors.CommandError('--assign takes LOADBALANCER_ID='
                                      'CLUSTER, not %r' % pair)
        if name not in ctx.rt.clusters.clusters:
            raise errors.CommandError(ctx.no_cluster(
                name, ' that multilb can apply to'))
        found[lb_id] = name
    return found


class _Run:
    """One rebuild: the Octavia client, the writer and the choices."""

    def __init__(self, ctx, client, dry_run, assigned):
        self.ctx = ctx
        self.client = client
        self.dry_run = dry_run
        self.assigned = assigned
        self.writer = rebuild.Rebuilder(ctx.state, dry_run=dry_run)

    def one(self, lb_id, holders):
        row = {'id': lb_id, 'holders': sorted(holders), 'cluster': None,
               'project_id': None, 'outcome': None, 'detail': '',
               'writes': [], 'not_recovered': [], 'sync_queued': False}
        try:
            graph = self.client.get_loadbalancer(lb_id)
        except octavia.OctaviaUnavailable as exc:
            row.update(outcome=NOT_ASKED,
                       detail='Octavia could not be asked: %s' % exc)
            return row
        existing = self.ctx.state.get_lb(lb_id)
        if graph is None:
            return self._absent(row, existing)
        row['project_id'] = graph.get('project_id')
        if existing is not None:
            row.update(outcome=rebuild.KEPT, cluster=existing.get('cluster'),
                       detail='the store already places it on %s: left as '
                       'it is' % existing.get('cluster'))
            return row
        target = self.assigned.get(lb_id) or (
            holders[0] if len(holders) == 1 else None)
        if target is None:
            return self._unplaced(row, holders)
        return self._record(row, graph, target)

    @staticmethod
    def _absent(row, existing):
        if not row['holders']:
            row.update(outcome=UNKNOWN, detail='unknown to Octavia and to '
                       'every cluster: nothing to recover')
            return row
        row.update(outcome=ORPHAN, detail='held by %s, unknown to Octavia: '
                   "not recorded; the agent's orphan sweep removes it from "
                   'the cluster' % ' and '.join(row['holders']))
        if existing is not None:
            row['detail'] += (
                '; the store still places it on %s: run lb sync %s, the '
                'agent then finds Octavia does not have it and releases it'
                % (existing.get('cluster'), row['id']))
        return row

    @staticmethod
    def _unplaced(row, holders):
        hint = ('multilb refuses every change of it, delete and failover '
                'included, until it has a record: choose its cluster with '
                '--assign %s=CLUSTER' % row['id'])
        if holders:
            row.update(outcome=SEVERAL, detail='held by %s: not recovered; '
                       "%s (the agent's orphan sweep then removes it from "
                       'the other)' % (' and '.join(holders), hint))
        else:
            row.update(outcome=NOWHERE, detail='Octavia has it but no '
                       'cluster lists it (a cluster may not be able to name '
                       'a load balancer without listeners): not recovered; '
                       '%s' % hint)
        return row

    def _record(self, row, graph, target):
        cluster = self.ctx.rt.clusters.clusters[target]
        planned = rebuild.plan(cluster, graph, self.ctx.rt.pools.pools,
                               now=self.ctx.now)
        result = self.writer.write(planned)
        row.update(outcome=result['outcome'], writes=result['writes'],
                   not_recovered=result['not_recovered'],
                   cluster=result.get('cluster', target))
        if result['outcome'] == rebuild.KEPT:
            row['detail'] = ('the store already places it on %s: left as '
                             'it is' % row['cluster'])
            return row
        record = planned['record']
        verb = 'would record' if self.dry_run else 'recorded'
        row['detail'] = '%s on %s (project %s, %d listener(s), %d object(s)' \
            ' indexed%s)' % (verb, target, record['project_id'],
                             record['listeners'], len(record['indexed']),
                             ', VIP of pool %s' % record['vip']['pool']
                             if record.get('vip') else '')
        if target not in row['holders']:
            row['detail'] += '; a re-apply on %s %s queued' % (
                target, 'would be' if self.dry_run else 'is')
            if not self.dry_run:
                self.ctx.state.add_sync(row['id'], record)
                row['sync_queued'] = True
        return row


def store_rebuild(ctx, args):
    assigned = _assignments(ctx, args.assign)
    ctx.state.cluster_runtime()      # an unreachable store fails here (1)
    client = octavia_client(ctx.rt.conf)
    clusters, held = _listings(ctx)
    run = _Run(ctx, client, args.dry_run, assigned)
    rows = [run.one(lb_id, held.get(lb_id, ()))
            for lb_id in sorted(set(held) | set(args.id) | set(assigned))]
    summary = {outcome: sum(1 for r in rows if r['outcome'] == outcome)
               for outcome in OUTCOMES}
    data = {'dry_run': bool(args.dry_run), 'clusters': clusters,
            'loadbalancers': rows, 'summary': summary,
            'not_recovered': dict(rebuild.LOST)}
    text = _text(data)
    failed = [c['name'] for c in clusters if c['error']]
    unresolved = [r['id'] for r in rows if r['outcome'] in UNRESOLVED]
    if failed or unresolved:
        sys.stdout.write(fmt.to_json(data) if args.format == 'json'
                         else text)
        raise errors.CommandError('store rebuild %s: %s' % (
            'did what it could' if not args.dry_run else 'dry run',
            '; '.join(filter(None, [
                failed and 'cluster(s) not listed: %s' % ', '.join(failed),
                unresolved and 'load balancer(s) without a record: %s' % (
                    ', '.join(unresolved))]))), errors.EXIT_FAILURE)
    return data, text


def _text(data):
    text = fmt.table(['cluster', 'listed', 'error'], [
        (c['name'], '-' if c['listed'] is None else c['listed'],
         c['error'] or '-') for c in data['clusters']])
    rows = data['loadbalancers']
    text += '\n' + (fmt.table(
        ['load balancer', 'outcome', 'cluster', 'detail'],
        [(r['id'], r['outcome'], r['cluster'] or '-', r['detail'])
         for r in rows]) if rows else 'no load balancer found\n')
    for r in rows:
        for note in r['not_recovered']:
            text += '%s: %s\n' % (r['id'], note)
        if data['dry_run'] and r['writes']:
            index = [k for k in r['writes'] if k.startswith('idx/')]
            text += '%s would write: %s\n' % (r['id'], ', '.join(
                [k for k in r['writes'] if not k.startswith('idx/')]
                + ['%d idx/ entries' % len(index)]))
    text += '\n' + ', '.join('%s %d' % (outcome, count) for outcome, count
                             in data['summary'].items()) + '\n'
    if data['dry_run']:
        text += 'dry run: nothing was written\n'
    if data['summary'][rebuild.RECOVERED] or data['summary'][
            rebuild.WOULD_RECOVER]:
        text += '\nNot rebuilt for any load balancer:\n' + ''.join(
            '  %s\n' % note for _key, note in rebuild.LOST)
    return text


def add_parsers(objects, add_format):
    """Register ``store`` and ``store rebuild`` (manage.build_parser);
    return the ``store`` actions, for the other ``store`` commands."""
    parser = objects.add_parser('store', help='the multilb state store '
                                '(disaster recovery, upgrades)')
    actions = parser.add_subparsers(dest='action', required=True,
                                    metavar='{rebuild,upgrade}')
    sub = actions.add_parser(
        'rebuild', help='after the state store was lost: record again the '
        'load balancers the clusters hold and Octavia knows (never '
        'overwrites a record); run it on a controller where '
        'octavia-driver-agent runs (it asks Octavia through its sockets)',
        description='Lists every cluster of [multilb] enabled_clusters, '
        "asks Octavia (through the driver agent's sockets of [driver_agent]:"
        ' run it on a controller where octavia-driver-agent runs) for each '
        'load balancer, and records each one Octavia knows and exactly one '
        'cluster holds. Reports orphans, load balancers held by several '
        'clusters or by none, and what no record gets. Exit 1 when a '
        'cluster could not be listed, Octavia could not be asked or a load '
        'balancer is left without a record.')
    sub.add_argument('--id', action='append', default=[],
                     metavar='LOADBALANCER_ID', type=arguments.loadbalancer_id,
                     help='also look this load balancer up in Octavia '
                     '(one no cluster can name, e.g. without listeners; '
                     'find them with: openstack loadbalancer list '
                     '--provider multilb); repeatable')
    sub.add_argument('--assign', action='append', default=[],
                     metavar='LOADBALANCER_ID=CLUSTER',
                     type=arguments.assignment,
                     help='record this load balancer on CLUSTER (held by '
                     'several clusters, or by none); a re-apply is queued '
                     'when the cluster does not list it; repeatable')
    sub.add_argument('--dry-run', action='store_true',
                     help='print what would be written; write nothing')
    add_format(sub)
    sub.set_defaults(func=store_rebuild)
    return actions
