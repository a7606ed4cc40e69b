"""Per-cluster configuration: ``[cluster_defaults]`` and ``[cluster:<name>]``.

Any cluster section may override any option of ``[cluster_defaults]``
(cinder's ``[backend_defaults]`` pattern). Backend-specific options, declared
by the backend class, live in the same sections.

oslo.config checks values lazily, so a bad value would only explode on first
use (and break ``log_opt_values``). :func:`load_clusters` therefore reads
every option of every enabled cluster once, up front, and turns each problem
into one :class:`~multilb.exceptions.ConfigError` naming the section and the
option; a broken cluster is left out and the others keep working.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
import typing

from oslo_config import cfg

from multilb import addresses
from multilb import exceptions
from multilb import registry

LOG = logging.getLogger(__name__)

DEFAULTS_GROUP = 'cluster_defaults'
SECTION_PREFIX = 'cluster:'
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$')

opts = [
    cfg.StrOpt(
        'backend',
        help='Entry-point name, in the multilb.backends group, of the backend '
             'that drives this cluster (for example: caddy). Required, in '
             'each [cluster:<name>] section or once in [cluster_defaults].'),
    cfg.IntOpt(
        'max_loadbalancers', default=0, min=0,
        help='Most load balancers the scheduler places on this cluster. '
             '0 means unlimited.'),
    cfg.IntOpt(
        'max_listeners', default=0, min=0,
        help='Most listeners, over all its load balancers, that the '
             'scheduler lets this cluster carry: a new load balancer whose '
             'listeners do not fit goes elsewhere, and a new listener on a '
             'full cluster is refused. Counted by the agent from what it '
             'applied (not reserved atomically like max_loadbalancers). 0 '
             'means unlimited.'),
    cfg.StrOpt(
        'description', default='',
        help='Free text shown to operators by multilb-manage.'),
    cfg.ListOpt(
        'tags', default=[],
        help='Labels of this cluster (for example: gold, dc1). Flavors and '
             'availability zones select clusters by tag (cluster_tags).'),
    cfg.IntOpt(
        'breaker_fail_max', default=5, min=1,
        help='Consecutive failed calls (no answer, timeout, 5xx) after which '
             'the cluster\'s circuit breaker opens: the scheduler places no '
             'new load balancer on the cluster and the agent stops calling '
             'it until the breaker closes. A probe that finds no node '
             'answering opens it at once.'),
    cfg.FloatOpt(
        'breaker_reset_timeout', default=30.0, min=0.5,
        help='Seconds an open circuit breaker waits before letting one '
             'trial call through (half-open).'),
    cfg.IntOpt(
        'breaker_success_threshold', default=1, min=1,
        help='Successful trial calls that close a half-open circuit '
             'breaker (one at a time; any failure opens it again).'),
    cfg.ListOpt(
        'member_networks', default=[],
        help='CIDRs of the tenant networks this cluster\'s appliances '
             'reach. If set, members (address and monitor_address) of load '
             'balancers on this cluster must be inside them; the scheduler '
             'places a new load balancer only on a cluster that reaches all '
             'of its members. Empty: any address the global rules allow '
             '([multilb] management_cidrs and the fixed refusals: loopback, '
             'link-local, appliance endpoints, ...). A cluster is one '
             'routing domain: every tenant\'s members are reached from the '
             'same appliance network, so list only what it may reach.'),
    cfg.ListOpt(
        'vip_pools', default=[],
        help='Names of the VIP pools ([vip_pool:<name>]) whose addresses '
             'this cluster can serve (its nodes are attached to the pool\'s '
             'network). A load balancer whose VIP comes from a pool is '
             'placed only on a cluster listing that pool.'),
    cfg.StrOpt(
        'routing_domain', default='',
        help='Clusters with the same routing domain share their VIP '
             'address space: a VIP address and port can be bound by one '
             'listener only within a domain (backends that bind addresses, '
             'such as caddy). Empty: the cluster is a domain of its own.'),
    cfg.IntOpt(
        'workers', min=1,
        help='Load balancers of this cluster the agent applies in '
             'parallel. Unset: the backend\'s own figure (f5: 100, as its '
             'applies mostly wait for the device, which coalesces them), '
             'else [multilb] workers_per_cluster.'),
    cfg.FloatOpt(
        'apply_retry_timeout', min=0.0,
        help='Seconds the agent retries a change this cluster answers as '
             'unavailable (or busy) before it reports ERROR. Unset: '
             '[multilb] apply_retry_timeout. Raise it for appliances with '
             'long change queues (f5: keep change_timeout below it).'),
    cfg.ListOpt(
        'projects', default=[],
        help='If set, the cluster is dedicated to these project ids: no '
             'other project is placed on it. Related options: '
             '[multilb_scheduler] confine_dedicated_projects.'),
]


@dataclasses.dataclass(frozen=True)
class ClusterConfig:
    """The validated configuration of one enabled cluster."""

    name: str
    backend: str
    max_loadbalancers: int
    description: str
    backend_class: type = dataclasses.field(repr=False, compare=False)
    tags: frozenset = frozenset()
    projects: frozenset = frozenset()
    max_listeners: int = 0
    breaker_fail_max: int = 5
    breaker_reset_timeout: float = 30.0
    breaker_success_threshold: int = 1
    member_networks: tuple = ()
    vip_pools: frozenset = frozenset()
    routing_domain: str = ''
    workers: typing.Optional[int] = None
    """Parallel applies; None: [multilb] workers_per_cluster."""
    apply_retry_timeout: typing.Optional[float] = None
    """Retries of an unavailable change; None: [multilb]'s."""
    options: typing.Mapping[str, typing.Any] = dataclasses.field(
        default_factory=dict, repr=False, compare=False)
    """Backend-specific options, resolved against [cluster_defaults]."""


@dataclasses.dataclass(frozen=True)
class ClusterSet:
    """Every enabled cluster: the valid ones, and why the others are not."""

    clusters: typing.Mapping[str, ClusterConfig]
    errors: typing.Mapping[str, str]


def section(name):
    return SECTION_PREFIX + name


def register_defaults(conf):
    conf.register_opts(opts, group=DEFAULTS_GROUP)


def _cluster_opts(opt_list):
    """Copies of ``opt_list`` without defaults: None means "use defaults"."""
    copies = []
    for opt in opt_list:
        clone = copy.copy(opt)
        clone.default = None
        copies.append(clone)
    return copies


def read_option(conf, group, opt):
    try:
        return getattr(conf[group], opt.dest)
    except (cfg.ConfigFileValueError, ValueError) as exc:
        raise exceptions.ConfigError('[%s] %s: %s; expected %r' % (
            group, opt.dest, clean(exc), opt.type)) from None


def clean(exc):
    """oslo's message names the file location object; keep the reason."""
    text = ' '.join(str(exc).split())
    marker = 'is not valid: '
    if marker in text:
        text = 'invalid value (%s)' % text.split(marker, 1)[1]
    return text


def _resolve(conf, name, opt_list, own_defaults=False):
    """``{option: value}`` of one cluster: its section, else
    ``[cluster_defaults]``, else (``own_defaults``: backend options, whose
    ``[cluster_defaults]`` copies have no default) the option's default."""
    group = section(name)
    values = {}
    for opt in opt_list:
        value = read_option(conf, group, opt)
        if value is None:
            value = read_option(conf, DEFAULTS_GROUP, opt)
        if value is None and own_defaults:
            value = opt.default
        values[opt.dest] = value
    return values


def _register_backend_defaults(conf, backend_opts):
    """Register ``backend_opts`` in ``[cluster_defaults]`` without their
    defaults. Backends may share option names (``endpoints``,
    ``read_timeout``...) with their own defaults and help: the first
    registration of a name serves every backend, whose own default
    applies when neither section sets it (backends sharing a name must
    give it the same type: tests/compliance/test_backend_options.py)."""
    for opt in _cluster_opts(backend_opts):
        try:
            conf.register_opt(opt, group=DEFAULTS_GROUP)
        except cfg.DuplicateOptError:
            continue     # another backend's option of that name


def _load_one(conf, name):
    group = section(name)
    if not NAME_RE.match(name):
        raise exceptions.ConfigError(
            '[multilb] enabled_clusters: invalid cluster name %r; names may '
            'contain letters, digits, "_", "-" and "." (at most 63)' % name)
    if group not in conf.list_all_sections():
        raise exceptions.ConfigError(
            '[multilb] enabled_clusters lists %r but the configuration has no '
            '[%s] section' % (name, group))
    conf.register_opts(_cluster_opts(opts), group=group)
    values = _resolve(conf, name, opts)
    if not values['backend']:
        raise exceptions.ConfigError(
            '[%s] backend: missing; set it to one of the installed backends: '
            '%s' % (group, ', '.join(registry.installed_backend_names())))
    backend_class = registry.backend_class(values['backend'], group)
    backend_opts = list(backend_class.get_config_options())
    _register_backend_defaults(conf, backend_opts)
    conf.register_opts(_cluster_opts(backend_opts), group=group)
    backend_values = _resolve(conf, name, backend_opts, own_defaults=True)
    try:
        backend_class.check_config(backend_values)
    except exceptions.ConfigError as exc:
        raise exceptions.ConfigError('[%s] %s' % (group, exc)) from None
    try:
        member_networks = addresses.parse_networks(
            values['member_networks'], 'member_networks')
    except ValueError as exc:
        raise exceptions.ConfigError('[%s] %s' % (group, exc)) from None
    return ClusterConfig(name=name, backend=values['backend'],
                         max_loadbalancers=values['max_loadbalancers'],
                         description=values['description'],
                         backend_class=backend_class,
                         tags=frozenset(values['tags'] or ()),
                         projects=frozenset(values['projects'] or ()),
                         max_listeners=values['max_listeners'],
                         breaker_fail_max=values['breaker_fail_max'],
                         breaker_reset_timeout=values['breaker_reset_timeout'],
                         breaker_success_threshold=values[
                             'breaker_success_threshold'],
                         member_networks=member_networks,
                         vip_pools=frozenset(values['vip_pools'] or ()),
                         routing_domain=(values['routing_domain'] or
                                         name).strip(),
                         workers=(values['workers'] or
                                  backend_class.PARALLEL_APPLIES),
                         apply_retry_timeout=values['apply_retry_timeout'],
                         options=backend_values)


def _check_shared_appliance(cluster, loaded):
    """Refuse a cluster whose appliance endpoints (IP and port) another
    enabled cluster already has: each would take the other's load
    balancers for orphans and remove them."""
    mine = {(ip, port) for ip, port in cluster.backend_class
            .management_addresses(cluster.options) if port is not None}
    for other in loaded.values():
        shared = mine & {(ip, port) for ip, port in other.backend_class
                         .management_addresses(other.options)}
        if shared:
            ip, port = sorted(shared)[0]
            raise exceptions.ConfigError(
                '[%s] endpoints: the appliance at %s:%s is cluster %s\'s '
                'too; an appliance belongs to one cluster (each would remove '
                'the other\'s load balancers as orphans)' % (
                    section(cluster.name), ip, port, other.name))


def load_clusters(conf) -> ClusterSet:
    """Validate every enabled cluster; log one ERROR per broken one."""
    clusters, errors = {}, {}
    try:
        names = conf.multilb.enabled_clusters
    except (cfg.ConfigFileValueError, ValueError) as exc:
        names = []
        errors['*'] = '[multilb] enabled_clusters: %s' % clean(exc)
    try:
        for opt in opts:
            read_option(conf, DEFAULTS_GROUP, opt)
    except exceptions.ConfigError as exc:
        errors['*'] = str(exc)
        names = []
    seen = set()
    for name in names:
        if name in seen:
            LOG.warning('[multilb] enabled_clusters lists %r twice; the '
                        'repeat is ignored', name)
            continue
        seen.add(name)
        try:
            cluster = _load_one(conf, name)
            _check_shared_appliance(cluster, clusters)
        except exceptions.ConfigError as exc:
            errors[name] = str(exc)
        else:
            clusters[name] = cluster
    for name, error in errors.items():
        LOG.error('Cluster %s is disabled: %s', name, error)
    for section_name in conf.list_all_sections():
        if (section_name.startswith(SECTION_PREFIX)
                and section_name[len(SECTION_PREFIX):] not in seen):
            LOG.warning('Section [%s] is not used: its cluster is not in '
                        '[multilb] enabled_clusters', section_name)
    return ClusterSet(clusters=clusters, errors=errors)
