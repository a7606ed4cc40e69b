"""What ``multilb-status upgrade check`` verifies: everything the API and
the agent will load, read the way they read it, with one line per problem.

Each check takes the loaded configuration and returns ``[Finding]``; an
empty list means the check passed. FAILURE: the service would refuse
work or fail at start (a value it cannot parse, a cluster section it
ignores, a scheduler plugin that does not exist, a store or coordination
backend it cannot reach). WARNING: it runs, but not as written (an option
oslo.config silently ignores because it is misspelt or misplaced, a
section of a cluster that is not enabled).

oslo.config never reports unknown options, so :func:`unknown_options`
reads the raw files (the ``--config-file`` ones, then each ``*.conf`` of
the ``--config-dir`` ones, as oslo.config does) and compares each key of
multilb's sections with the options multilb registers for that section.
"""

from __future__ import annotations

import dataclasses
import difflib
import glob
import os

from oslo_config import cfg

from multilb.conf import clusters as cluster_conf
from multilb.conf import core
from multilb.conf import scheduler as scheduler_conf
from multilb.conf import vip_pools as pool_conf
from multilb import coordination
from multilb import exceptions
from multilb import registry
from multilb import schema
from multilb import store

FAILURE, WARNING = 'failure', 'warning'


@dataclasses.dataclass(frozen=True)
class Finding:
    severity: str
    """:data:`FAILURE` or :data:`WARNING`."""
    text: str
    """One line naming the section, the option and what is allowed."""


def option_values(conf):
    """Every option of ``[multilb]`` and ``[multilb_scheduler]`` parses."""
    found = []
    for group, opts in core.list_opts() + scheduler_conf.list_opts():
        conf.register_opts(opts, group=group)
        for opt in opts:
            try:
                cluster_conf.read_option(conf, group, opt)
            except exceptions.ConfigError as exc:
                found.append(Finding(FAILURE, str(exc)))
    return found


def clusters(rt):
    """Every enabled cluster's section loads (and there is one at least);
    every VIP pool section loads."""
    found = [Finding(FAILURE, error)
             for _name, error in sorted(rt.clusters.errors.items())]
    found += [Finding(FAILURE, error)
              for _name, error in sorted(rt.pools.errors.items())]
    if not rt.clusters.errors and not rt.clusters.clusters:
        found.append(Finding(FAILURE, '[multilb] enabled_clusters is empty: '
                             'every load balancer create would fail; list '
                             'the clusters, each with a [cluster:NAME] '
                             'section'))
    return found


def scheduler(conf):
    """The scheduler's filters and weighers load with their options."""
    from scheduler import manager  # noqa: the API's import, done late
    try:
        manager.ClusterScheduler(conf)
    except exceptions.ConfigError as exc:
        return [Finding(FAILURE, str(exc))]
    return []


def state_store(conf):
    """The state store named by ``store_url`` answers, and holds the key
    layout this multilb reads (or none yet: the first agent records it)."""
    url = conf.multilb.store_url
    try:
        found = schema.read(store.get_kv_store(url))
        if found is not None:
            schema.check(found.get('version'))
    except exceptions.StoreSchemaError as exc:
        return [Finding(FAILURE, str(exc))]
    except exceptions.ConfigError as exc:
        return [Finding(FAILURE, '[multilb] store_url: %s' % exc)]
    except exceptions.StoreUnavailable as exc:
        return [Finding(FAILURE, '[multilb] store_url %s: cannot reach the '
                        'state store: %s' % (store.redact_url(url), exc))]
    return []


def coordination_backend(conf):
    """The tooz backend named by ``coordination_url`` answers."""
    url = conf.multilb.coordination_url
    try:
        coordination.live_agents(url)
    except (exceptions.StoreUnavailable, exceptions.ConfigError) as exc:
        return [Finding(FAILURE, '[multilb] coordination_url %s: %s' % (
            store.redact_url(url), exc))]
    return []


def config_files(conf):
    """The files oslo.config read, in its order."""
    files = list(conf.config_file or ())
    for directory in conf.config_dirs or ():
        files += sorted(glob.glob(os.path.join(directory, '*.conf')))
    return [path for path in files if os.path.isfile(path)]


def _names(opts):
    names = set()
    for opt in opts:
        names |= {opt.name, opt.dest}
        names |= {d.name for d in opt.deprecated_opts if d.name}
    return {name.replace('-', '_') for name in names}


class _Known:
    """The option names of every section multilb reads, computed once per
    check (listing the backends loads their entry points)."""

    def __init__(self):
        self.groups = {group: _names(opts) for group, opts in
                       core.list_opts() + scheduler_conf.list_opts()}
        self.cluster = _names(cluster_conf.opts)
        self.backends = {
            name: _names(backend_class.get_config_options())
            for name, backend_class in
            registry.installed_backend_classes().items()}
        self.any_backend = set().union(*self.backends.values())
        self.pool = _names(pool_conf.opts)

    def names(self, section, raw):
        """Option names multilb reads in ``section``, or None (not ours);
        ``raw``: the file's sections, where a cluster's backend is."""
        if section in self.groups:
            return self.groups[section]
        if section == cluster_conf.DEFAULTS_GROUP:
            return self.cluster | self.any_backend
        if section.startswith(cluster_conf.SECTION_PREFIX):
            backend = (raw.get(section, {}).get('backend') or raw.get(
                cluster_conf.DEFAULTS_GROUP, {}).get('backend') or [''])[-1]
            # an unknown backend: the cluster check reports it
            return self.cluster | self.backends.get(backend,
                                                    self.any_backend)
        if section.startswith(pool_conf.SECTION_PREFIX):
            return self.pool
        return None


def _suggest(key, known):
    close = difflib.get_close_matches(key, sorted(known), n=1)
    if close:
        return 'did you mean %s?' % close[0]
    return 'allowed: %s' % ', '.join(sorted(known))


def unknown_options(conf):
    """Keys of multilb's sections that no option of that section reads,
    and sections of clusters or pools that are not enabled."""
    raw = {}
    found = []
    known_names = _Known()
    for path in config_files(conf):
        sections = {}
        try:
            cfg.ConfigParser(path, sections).parse()
        except cfg.ParseError as exc:
            found.append(Finding(FAILURE, 'cannot parse %s: %s' % (path, exc)))
            continue
        for section, values in sections.items():
            raw.setdefault(section, {}).update(values)
            known = known_names.names(section, sections)
            for key in sorted(set(values) - (known or set())):
                if known is not None:
                    found.append(Finding(WARNING, '%s: [%s] %s is not an '
                                         'option of this section and is '
                                         'ignored; %s' % (
                                             path, section, key,
                                             _suggest(key, known))))
    enabled = _list_option(conf, 'enabled_clusters')
    pools = _list_option(conf, 'vip_pools')
    for section in sorted(raw):
        for prefix, names, option in (
                (cluster_conf.SECTION_PREFIX, enabled, 'enabled_clusters'),
                (pool_conf.SECTION_PREFIX, pools, 'vip_pools')):
            if section.startswith(prefix) and names is not None and \
                    section[len(prefix):] not in names:
                found.append(Finding(WARNING, '[%s] is ignored: %r is not '
                                     'in [multilb] %s' % (
                                         section, section[len(prefix):],
                                         option)))
    return found


def _list_option(conf, name):
    try:
        return set(getattr(conf.multilb, name) or ())
    except (cfg.ConfigFileValueError, ValueError):
        return None     # option_values reports it


CHECKS = (
    ('Option values', option_values),
    ('Unknown options and ignored sections', unknown_options),
    ('Cluster and VIP pool sections', clusters),
    ('Scheduler filters and weighers', scheduler),
    ('State store', state_store),
    ('Coordination backend', coordination_backend),
)
"""``(title, check)``: checks that take the runtime say so by their
parameter name, ``rt``; the others take the ConfigOpts."""
