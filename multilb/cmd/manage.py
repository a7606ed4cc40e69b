"""``multilb-manage``: the operator's view and control of the cluster fleet.

::

    multilb-manage --config-file /etc/octavia/octavia.conf cluster list
    multilb-manage ... cluster show NAME
    multilb-manage ... cluster drain NAME [--reason TEXT]
    multilb-manage ... cluster undrain NAME
    multilb-manage ... cluster sync NAME
    multilb-manage ... lb show LOADBALANCER_ID
    multilb-manage ... cluster evacuate NAME [--to CLUSTER] [--dry-run]
                                       [--concurrency N] [--timeout S]
    multilb-manage ... cluster retire NAME [--concurrency N] [--timeout S]
    multilb-manage ... lb sync LOADBALANCER_ID
    multilb-manage ... lb move LOADBALANCER_ID [--to CLUSTER] [--no-wait]
                                              [--timeout S]
    multilb-manage ... outbox list [--cluster NAME]
    multilb-manage ... vip-pool list
    multilb-manage ... agents list
    multilb-manage ... store rebuild [--id LOADBALANCER_ID]... [--dry-run]
    multilb-manage ... store upgrade

It reads the configuration files Octavia reads (``[multilb]`` and the
``[cluster:<name>]`` sections, validated exactly as the driver does, through
:class:`multilb.runtime.Runtime`) and the same state store (etcd or sqlite).
Drain and undrain write ``cluster/<name>/admin``, which every API worker
reads on its next placement: they take effect at once, on every host.

The global options (``--config-file``, ``--config-dir``, ``--debug``) go
before or after the command (:mod:`multilb.cmd.arguments`); ``--version``
prints multilb's version.

Exit codes: 0 success; 1 the state store cannot be reached (or an
unexpected failure, or what the command did failed: ``lb move``, ``cluster
evacuate``, ``cluster retire``, ``store rebuild``); 2 a usage or
configuration error, an unknown name, or an argument that is no load
balancer id (a UUID) or cluster name; 3 ``cluster list`` only: the list
is printed in full, and at least one cluster needs attention (broken
section, no longer configured with work left on it, unreachable, stale
or no health, circuit breaker open: :mod:`multilb.cmd.views`; a cluster
that is only draining is fine); 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import traceback
import urllib.parse
import warnings

from oslo_config import cfg

from multilb.cmd import agents
from multilb.cmd import arguments
from multilb.cmd import clusters
from multilb.cmd import errors
from multilb.cmd import format as fmt
from multilb.cmd import move
from multilb.cmd import rebuild
from multilb.cmd import schema
from multilb.cmd import sync
from multilb.cmd import views
from multilb.cmd import who
from multilb.conf import clusters as cluster_conf
from multilb import exceptions
from multilb import moves
from multilb import runtime
from multilb import store

CommandError = errors.CommandError
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = (errors.EXIT_OK, errors.EXIT_FAILURE,
                                     errors.EXIT_USAGE)
EXIT_ATTENTION = errors.EXIT_ATTENTION
PROG = who.PROG
EXIT_CODES = ('Exit codes: 0 success; 1 state store unreachable, the '
              'command failed, or an unexpected failure; 2 usage or '
              'configuration error, unknown name, malformed load balancer '
              'id or cluster name; 3 (cluster list) some cluster needs '
              'attention: config-error, not-configured, no-agent, '
              'unreachable, stale, never-probed or breaker-open (the list '
              'is printed in full; '
              'draining alone is fine).')
# where deployments put Octavia's extra configuration files
CONF_DIRS = ('/etc/octavia/conf.d', '/etc/octavia/octavia.conf.d')
NAME_HELP = clusters.NAME_HELP


# -- configuration and state -------------------------------------------------

def load_config(args):
    """A private ConfigOpts over the files Octavia reads."""
    cli = []
    for path in args.config_file:
        cli += ['--config-file', path]
    for path in args.config_dir:
        cli += ['--config-dir', path]
    conf = cfg.ConfigOpts()
    try:
        conf(args=cli, project='octavia', prog='octavia')
    except cfg.Error as exc:
        raise CommandError('cannot read the configuration: %s' % exc)
    if 'multilb' not in conf.list_all_sections():
        files = list(conf.config_file or ()) + list(conf.config_dir or ())
        raise CommandError('no [multilb] section in %s; %s' % (
            ', '.join(files) or 'the default configuration files (none '
            'found: looked for octavia.conf in ~/.octavia, ~, '
            '/etc/octavia and /etc)', _where_multilb_may_be(conf)))
    return conf


def _where_multilb_may_be(conf):
    """The end of the "no [multilb] section" error: a configuration
    directory not read that may hold multilb's options, or the file."""
    read = {os.path.realpath(d) for d in conf.config_dir or ()}
    candidates = []
    for path in conf.config_file or ():
        here = os.path.dirname(os.path.abspath(path))
        candidates += [os.path.join(here, 'conf.d'),
                       os.path.abspath(path) + '.d',
                       os.path.join(here, 'octavia.conf.d')]
    candidates += CONF_DIRS
    found = [d for d in dict.fromkeys(candidates)
             if os.path.isdir(d) and os.path.realpath(d) not in read]
    if not found:
        return 'pass the octavia.conf that octavia-api uses with ' \
            '--config-file'
    if len(found) == 1:
        where = 'the configuration directory %s: pass --config-dir %s' % (
            found[0], found[0])
    else:
        where = 'a configuration directory (%s): pass --config-dir DIR' % (
            ', '.join(found))
    return ("multilb's options may live in %s (else pass the octavia.conf "
            'that octavia-api uses with --config-file)' % where)


class Context:
    """The runtime (configuration + clusters) and its state store."""

    def __init__(self, rt, now=None):
        self.rt = rt
        self.now = time.time() if now is None else now
        self.url = rt.conf.multilb.store_url
        self.stale_after = 3 * rt.conf.multilb.health_interval
        self.deadline = rt.conf.multilb.status_delivery_deadline
        # what a command sets to exit with another code than 0 after its
        # output, and the line it writes to stderr then
        self.exit_code, self.notice = EXIT_OK, None

    @property
    def state(self):
        """The state store, once it is known to hold the key layout this
        multilb reads: a command run from a host not upgraded yet must not
        read or write a store a newer multilb upgraded (``store upgrade``
        uses :attr:`any_state`).

        :raises CommandError: exit 2, naming both versions.
        """
        state = self.any_state
        try:
            self.rt.checked()
        except exceptions.StoreSchemaError as exc:
            raise CommandError(str(exc)) from None
        return state

    @property
    def any_state(self):
        """The state store, whatever key layout it holds."""
        _check_sqlite_file(self.url)
        try:
            return self.rt.state
        except exceptions.ConfigError as exc:
            raise CommandError('[multilb] store_url: %s' % exc) from None

    def configured(self):
        """Names in [multilb] enabled_clusters (valid or broken), sorted."""
        return sorted(set(self.rt.clusters.clusters)
                      | set(self.rt.clusters.errors) - {'*'})

    def no_cluster(self, name, action=''):
        return 'no cluster %s%s; configured clusters: %s' % (
            name, action, ', '.join(self.configured()) or 'none')


def _check_sqlite_file(url):
    """Never create a sqlite store: it would belong to the wrong user."""
    try:
        parts = store.split_url(url)
    except exceptions.ConfigError as exc:
        raise CommandError('[multilb] store_url: %s' % exc) from None
    path = urllib.parse.unquote(parts.path)[1:]
    if parts.scheme == 'sqlite' and path and not os.path.exists(path):
        raise exceptions.StoreUnavailable(
            'the file %s does not exist; store_url must name the file that '
            'octavia-api and the driver agent use' % os.path.abspath(path))


def open_runtime(conf):
    rt = runtime.Runtime(conf)
    if '*' in rt.clusters.errors:
        raise CommandError('configuration error: %s' % rt.clusters.errors['*'])
    return rt


# -- commands ----------------------------------------------------------------

def lb_show(ctx, args):
    lb_id = args.id
    record = sync.known_loadbalancer(ctx, lb_id)
    name = record.get('cluster')
    runtime_info = ctx.state.cluster_runtime()
    cluster = views.summary(ctx, name, runtime_info.get(name, {}))
    intents = ctx.state.pending(name).get(lb_id, [])
    data = {
        'id': lb_id,
        'cluster': name,
        'cluster_state': cluster['state'],
        'project_id': record.get('project_id'),
        'created_at': fmt.iso(record.get('created_at')),
        'flavor': record.get('flavor') or {},
        'availability_zone': record.get('availability_zone') or {},
        'reservation': {'cluster': name, 'placed': cluster['placed'],
                        'max_loadbalancers': cluster['max_loadbalancers']},
        'pending': [{'op': i.get('op'), 'type': i.get('type'),
                     'id': i.get('id'), 'at': fmt.iso(i.get('at'))}
                    for i in intents],
        'outbox': sum(1 for _key, entry in ctx.state.outbox(name)
                      if entry.get('lb') == lb_id),
        'pools': {pool: sorted(members) for pool, members in
                  (record.get('pools') or {}).items()},
        'vip': record.get('vip'),
        'bound': sorted(record.get('binds') or {}),
        # objects the cluster refused, left out until changed (refused.py)
        'refused': sorted(record.get('refused') or ()),
        # a move running or failed (multilb.moves), or None
        'move': moves.Moves(ctx.state).get(lb_id),
    }
    return data, fmt.lb_text(data, cluster)


def _outbox_row(ctx, entry):
    """One outbox entry as ``outbox list`` shows it (stable keys)."""
    delivery = entry['delivery'] or {}
    next_at, refused = (delivery.get('next_attempt_at'),
                        delivery.get('refused_since'))
    return {
        'cluster': entry['cluster'], 'loadbalancer_id': entry['lb'],
        'key': entry['key'], 'created_at': fmt.iso(entry['created_at']),
        'age_seconds': round(max(0.0, ctx.now - entry['created_at']), 1),
        'attempts': int(delivery.get('attempts') or 0),
        'first_failure_at': fmt.iso(delivery.get('first_failure_at')),
        'last_attempt_at': fmt.iso(delivery.get('last_attempt_at')),
        'last_error': delivery.get('last_error'),
        'next_attempt_at': fmt.iso(next_at),
        'next_attempt_in_seconds': None if next_at is None else round(
            max(0.0, next_at - ctx.now), 1),
        'dropped_at': fmt.iso(refused + ctx.deadline) if refused else None,
    }


def outbox_list(ctx, args):
    name = args.cluster
    entries = ctx.state.outbox_entries(name)
    if name and not entries and name not in ctx.configured() and (
            name not in ctx.state.cluster_runtime()):
        raise CommandError(ctx.no_cluster(name))
    rows = [_outbox_row(ctx, entry) for entry in entries]
    return rows, fmt.outbox_table(rows, name, ctx.deadline)


def vip_pool_list(ctx, args):
    rows = []
    allocator = ctx.rt.vips if ctx.rt.pools.pools else None
    for name, pool in sorted(ctx.rt.pools.pools.items()):
        row = {'name': name, 'network_id': pool.network_id,
               'subnet_id': pool.subnet_id or None,
               'cidr': str(pool.network), 'quarantine': pool.quarantine,
               'clusters': sorted(c for c, cluster in
                                  ctx.rt.clusters.clusters.items()
                                  if name in cluster.vip_pools),
               'state': 'active', 'error': None}
        row.update(allocator.usage(pool))
        rows.append(row)
    for name, error in sorted(ctx.rt.pools.errors.items()):
        rows.append({'name': name, 'state': 'disabled', 'error': error})
    table = fmt.table(
        ('POOL', 'STATE', 'CIDR', 'NETWORK', 'ALLOCATED', 'QUARANTINED',
         'FREE', 'CLUSTERS'),
        [(r['name'], r['state'], r.get('cidr', '-'),
          r.get('network_id', '-'), r.get('allocated', '-'),
          r.get('quarantined', '-'), r.get('free', '-'),
          ', '.join(r.get('clusters') or ()) or '-') for r in rows])
    errors = ['%s: %s' % (r['name'], r['error']) for r in rows
              if r['error']]
    if not rows:
        table = 'no VIP pool is configured ([multilb] vip_pools)\n'
    return rows, table + ''.join('\n' + e for e in errors)


# -- command line ------------------------------------------------------------

def build_parser():
    parser = argparse.ArgumentParser(
        prog=PROG, description='Show and control the appliance clusters of '
        'the multilb Octavia provider.',
        epilog='The global options may also follow the command (multilb-'
        'manage cluster list --config-file PATH). ' + EXIT_CODES)
    arguments.add_global_options(parser)
    objects = parser.add_subparsers(
        dest='object', metavar='{cluster,lb,outbox,vip-pool,agents,store}',
        required=True)

    cluster = objects.add_parser('cluster', help='appliance clusters')
    actions = cluster.add_subparsers(
        dest='action', required=True,
        metavar='{list,show,drain,undrain,sync,evacuate,retire}')
    cluster_actions = actions
    clusters.add_parsers(actions)

    lb = objects.add_parser('lb', help='load balancers')
    actions = lb.add_subparsers(dest='action', required=True,
                                metavar='{show,sync,move}')
    sub = actions.add_parser('show', help="a load balancer's cluster, "
                             'project, flavor constraints and pending work')
    sub.add_argument('id', metavar='LOADBALANCER_ID',
                     type=arguments.loadbalancer_id,
                     help='the Octavia id (a UUID) of the load balancer')
    arguments.add_format(sub)
    sub.set_defaults(func=lb_show)
    sync.add_parsers(cluster_actions, actions, arguments.add_format,
                     NAME_HELP)
    move.add_parsers(cluster_actions, actions, arguments.add_format,
                     NAME_HELP)

    outbox = objects.add_parser('outbox', help='status updates not yet '
                                'delivered to Octavia')
    actions = outbox.add_subparsers(dest='action', required=True,
                                    metavar='{list}')
    sub = actions.add_parser('list', help='every status update waiting for '
                             'delivery: cluster, load balancer, age, failed '
                             'attempts, next retry, last error')
    sub.add_argument('--cluster', metavar='NAME',
                     type=arguments.cluster_name, help='only this cluster')
    arguments.add_format(sub)
    sub.set_defaults(func=outbox_list)

    pools = objects.add_parser('vip-pool', help='VIP address pools')
    actions = pools.add_subparsers(dest='action', required=True,
                                   metavar='{list}')
    sub = actions.add_parser('list', help='every VIP pool: range, addresses '
                             'handed out, in quarantine and free, and the '
                             'clusters that serve it')
    arguments.add_format(sub)
    sub.set_defaults(func=vip_pool_list)
    agents.add_parsers(objects, arguments.add_format)
    schema.add_parser(rebuild.add_parsers(objects, arguments.add_format),
                      arguments.add_format)
    arguments.spread_global_options(parser)
    return parser


def _setup_logging(debug):
    """Logs only with --debug; otherwise the output says what matters."""
    root = logging.getLogger()
    handler = (logging.StreamHandler(sys.stderr) if debug
               else logging.NullHandler())
    handler.setFormatter(logging.Formatter(
        '%(asctime)s %(levelname)s %(name)s: %(message)s'))
    level = root.level
    root.addHandler(handler)
    if debug:
        root.setLevel(logging.DEBUG)

    def restore():
        root.removeHandler(handler)
        root.setLevel(level)
    return restore


def run(args):
    conf = load_config(args)
    ctx = Context(open_runtime(conf))
    try:
        data, text = args.func(ctx, args)
    except exceptions.StoreUnavailable as exc:
        raise CommandError('cannot reach the multilb state store (%s): %s' % (
            store.redact_url(ctx.url), exc), EXIT_FAILURE) from exc
    sys.stdout.write(fmt.to_json(data) if args.format == 'json' else text)
    if ctx.notice:
        sys.stdout.flush()
        sys.stderr.write('%s: %s\n' % (PROG, ctx.notice))
    return ctx.exit_code


def main(argv=None):
    """Run one command; return the exit code (argparse's on bad usage)."""
    parser = build_parser()
    try:
        args = arguments.merge_global_options(parser.parse_args(argv))
    except SystemExit as exc:
        return exc.code
    restore = _setup_logging(args.debug)
    try:
        with warnings.catch_warnings():
            if not args.debug:
                # Libraries' own deprecation notices (eventlet, imported by
                # etcd3gw) mean nothing to an operator.
                warnings.simplefilter('ignore')
            return run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: B902 - one line, never a traceback
        code, message = _describe(exc)
        if args.debug:
            traceback.print_exc()
        sys.stderr.write('%s: error: %s\n' % (PROG, message))
        return code
    finally:
        restore()


def _describe(exc):
    """``(exit code, message)`` for a failed command."""
    if isinstance(exc, CommandError):
        return exc.code, str(exc)
    if isinstance(exc, exceptions.ConfigError):
        return EXIT_USAGE, 'configuration error: %s' % exc
    if isinstance(exc, cfg.ConfigFileValueError):
        # oslo: "Value for option NAME from LocationInfo(...) is not valid"
        name = str(exc).split('Value for option ', 1)[-1].split(' ', 1)[0]
        return EXIT_USAGE, 'configuration error: %s: %s (multilb-status ' \
            'upgrade check lists every problem)' % (
                name, cluster_conf.clean(exc))
    return EXIT_FAILURE, ('unexpected error: %s: %s (run with --debug for '
                          'details)' % (type(exc).__name__, exc))


if __name__ == '__main__':
    sys.exit(main())
