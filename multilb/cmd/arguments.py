"""The command line of ``multilb-manage`` that every command shares: the
global options (before or after the command), ``--format``, ``--version``
and the types that check an argument before anything is read.

The global options (``--config-file``, ``--config-dir``, ``--debug``) are
also accepted after the command (``multilb-manage cluster list
--config-file octavia.conf``), at every level: argparse parses each
subcommand into a namespace of its own and copies it over the parent's, so
each level has its own ``dest`` (absent unless given: ``SUPPRESS``) and
:func:`merge_global_options` appends them, in command-line order, to the
top level's lists.
"""

from __future__ import annotations

import argparse
import re

from multilb.conf import clusters as cluster_conf
from multilb import version as version_mod

# Octavia's ids: UUIDs, 8-4-4-4-12 hexadecimal digits
_UUID_RE = re.compile(r'[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}', re.I)
UUID_EXAMPLE = '6a83798d-75fa-43f0-9ad7-52b3f155a4a6'
GLOBAL_GROUP = 'global options (also accepted before the command)'
_MULTI = ('config_file', 'config_dir')


def loadbalancer_id(text):
    """argparse type of LOADBALANCER_ID: an Octavia id (a UUID), lower
    case; anything else is a usage error (exit 2) before the store is
    read."""
    if not _UUID_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            '%r is not a load balancer id: expected the UUID Octavia gave '
            'it (8-4-4-4-12 hexadecimal digits, e.g. %s; openstack '
            'loadbalancer list shows them)' % (text, UUID_EXAMPLE))
    return text.lower()


def cluster_name(text):
    """argparse type of a cluster name: the rule of ``[multilb]
    enabled_clusters`` (:data:`multilb.conf.clusters.NAME_RE`)."""
    if not cluster_conf.NAME_RE.fullmatch(text):
        raise argparse.ArgumentTypeError(
            '%r is not a cluster name: names have 1 to 63 letters, digits, '
            '"_", "-" and ".", starting with a letter or digit, as in '
            '[multilb] enabled_clusters' % text)
    return text


def assignment(text):
    """argparse type of ``--assign LOADBALANCER_ID=CLUSTER``."""
    lb_id, sep, name = text.partition('=')
    if not sep:
        raise argparse.ArgumentTypeError(
            '%r: expected LOADBALANCER_ID=CLUSTER' % text)
    return '%s=%s' % (loadbalancer_id(lb_id), cluster_name(name))


def version():
    """The installed multilb's version (:mod:`multilb.version`)."""
    return version_mod.version_string()


def add_format(parser):
    parser.add_argument(
        '--format', '-f', choices=('table', 'json'), default='table',
        help='output format (default: table); json has stable keys')


def add_global_options(parser):
    """The top level's options: ``--config-file``, ``--config-dir``,
    ``--debug`` and ``--version``."""
    parser.add_argument(
        '--config-file', action='append', default=[], metavar='PATH',
        help='an Octavia configuration file holding [multilb] and the '
        '[cluster:<name>] sections; repeat for several (default: '
        'octavia.conf searched as Octavia does, e.g. '
        '/etc/octavia/octavia.conf)')
    parser.add_argument(
        '--config-dir', action='append', default=[], metavar='DIR',
        help='a directory of *.conf files read after the --config-file '
        "ones (where multilb's options live in e.g. /etc/octavia/conf.d); "
        'repeatable')
    parser.add_argument('--debug', action='store_true',
                        help='log to stderr and show tracebacks')
    parser.add_argument('--version', action='version',
                        version='%(prog)s ' + version(),
                        help="print multilb's version and exit")


def _late_dest(name, depth):
    return '%s_after_%d' % (name, depth)


def spread_global_options(parser, depth=1):
    """Give every subcommand of ``parser``, at any depth, the global
    options, each level with its own ``dest`` (see the module's doc)."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        seen = set()
        for sub in action.choices.values():
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            group = sub.add_argument_group(GLOBAL_GROUP)
            group.add_argument(
                '--config-file', action='append', metavar='PATH',
                dest=_late_dest('config_file', depth),
                default=argparse.SUPPRESS,
                help='an Octavia configuration file; repeatable')
            group.add_argument(
                '--config-dir', action='append', metavar='DIR',
                dest=_late_dest('config_dir', depth),
                default=argparse.SUPPRESS,
                help='a directory of *.conf files; repeatable')
            group.add_argument(
                '--debug', action='store_true', default=argparse.SUPPRESS,
                help='log to stderr and show tracebacks')
            spread_global_options(sub, depth + 1)


def merge_global_options(args):
    """Append the global options given after the command to the top
    level's, in command-line order; return ``args``."""
    for name in _MULTI:
        prefix = name + '_after_'
        later = sorted((int(key[len(prefix):]), key) for key in vars(args)
                       if key.startswith(prefix))
        merged = list(getattr(args, name))
        for _depth, key in later:
            merged += getattr(args, key)
            delattr(args, key)
        setattr(args, name, merged)
    return args
