"""VIP address pools: ``[multilb] vip_pools`` and ``[vip_pool:<name>]``.

A pool is a range of addresses multilb hands out as VIPs (see
:mod:`multilb.vips`) for load balancers whose VIP network is the pool's
``network_id``. Like clusters, each pool is validated once, up front; a
broken or overlapping pool is left out with one ERROR naming the problem,
and VIP requests on its network are refused rather than served from the
wrong range.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import typing

from oslo_config import cfg

from multilb import exceptions
from multilb.conf import clusters as cluster_conf

LOG = logging.getLogger(__name__)

SECTION_PREFIX = 'vip_pool:'

opts = [
    cfg.StrOpt(
        'network_id',
        help='Id of the Neutron network whose VIP requests this pool '
             'serves: a load balancer created with this vip_network_id '
             '(or a vip_subnet_id equal to subnet_id) gets its VIP from the '
             'pool. Required.'),
    cfg.StrOpt(
        'subnet_id', default='',
        help='Id of the subnet reported as the VIP\'s subnet; a request '
             'that names this subnet (with or without a network) is served '
             'by the pool too. Empty: the subnet Octavia derived from the '
             'request.'),
    cfg.StrOpt(
        'cidr',
        help='The addresses of the pool (for example 203.0.113.0/24). The '
             'network and broadcast addresses of an IPv4 range of 4 or more '
             'addresses are not handed out. Carve the range out of '
             'Neutron\'s allocation pools so that Neutron never hands them '
             'out too. Required; pools may not overlap.'),
    cfg.ListOpt(
        'exclude', default=[],
        help='Addresses of the range never handed out (a gateway, the '
             'nodes\' own addresses).'),
    cfg.FloatOpt(
        'quarantine', default=300.0, min=0.0,
        help='Seconds a released VIP waits before it is handed out again '
             '(clients and caches that still use the old load balancer\'s '
             'address reach nothing instead of a new tenant).'),
]


@dataclasses.dataclass(frozen=True)
class VipPool:
    """One validated pool."""

    name: str
    network_id: str
    subnet_id: str
    network: typing.Any     # ipaddress.IPv4Network / IPv6Network
    exclude: frozenset
    quarantine: float

    def contains(self, address):
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return (ip.version == self.network.version and ip in self.network
                and self.usable(ip))

    def network_edges(self):
        """The network and broadcast address of an IPv4 range of 4 or more
        addresses (never handed out), else nothing."""
        if self.network.version == 4 and self.network.num_addresses >= 4:
            return [self.network.network_address,
                    self.network.broadcast_address]
        return []

    def usable(self, ip):
        """True for an address of the range that may be handed out."""
        return ip not in self.exclude and ip not in self.network_edges()

    def addresses(self):
        """Every address that may be handed out, in order."""
        for ip in self.network:
            if self.usable(ip):
                yield ip


@dataclasses.dataclass(frozen=True)
class PoolSet:
    pools: typing.Mapping[str, VipPool]
    errors: typing.Mapping[str, str]
    broken: typing.Mapping[str, str] = dataclasses.field(
        default_factory=dict)
    """network id -> name of the broken pool configured for it."""

    def for_request(self, network_id, subnet_id):
        """The pool serving a VIP request, or None (Octavia's own path)."""
        for pool in self.pools.values():
            if network_id and pool.network_id == network_id:
                return pool
            if subnet_id and pool.subnet_id == subnet_id:
                return pool
        return None

    def broken_for(self, network_id, subnet_id=None):
        """Name of a broken pool configured for ``network_id`` (or
        ``subnet_id``), or None."""
        return self.broken.get(network_id) or self.broken.get(subnet_id)


def section(name):
    return SECTION_PREFIX + name


def _load_one(conf, name):
    group = section(name)
    if not cluster_conf.NAME_RE.match(name):
        raise exceptions.ConfigError(
            '[multilb] vip_pools: invalid pool name %r; names may contain '
            'letters, digits, "_", "-" and "." (at most 63)' % name)
    if group not in conf.list_all_sections():
        raise exceptions.ConfigError(
            '[multilb] vip_pools lists %r but the configuration has no [%s] '
            'section' % (name, group))
    conf.register_opts(opts, group=group)
    values = {opt.dest: cluster_conf.read_option(conf, group, opt)
              for opt in opts}
    for required in ('network_id', 'cidr'):
        if not values[required]:
            raise exceptions.ConfigError('[%s] %s: missing' % (group,
                                                               required))
    try:
        network = ipaddress.ip_network(values['cidr'].strip(), strict=False)
    except ValueError:
        raise exceptions.ConfigError(
            '[%s] cidr: %r is not a CIDR (for example 203.0.113.0/24)' % (
                group, values['cidr'])) from None
    exclude = set()
    for value in values['exclude'] or ():
        try:
            exclude.add(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise exceptions.ConfigError(
                '[%s] exclude: %r is not an IP address' % (group,
                                                           value)) from None
    return VipPool(name=name, network_id=values['network_id'].strip(),
                   subnet_id=(values['subnet_id'] or '').strip(),
                   network=network, exclude=frozenset(exclude),
                   quarantine=values['quarantine'])


def load_pools(conf) -> PoolSet:
    """Validate every pool of ``[multilb] vip_pools``; one ERROR per broken
    one. Of two overlapping pools (or two on one network) the second is
    left out."""
    pools, errors, broken = {}, {}, {}
    try:
        names = conf.multilb.vip_pools
    except (cfg.ConfigFileValueError, ValueError) as exc:
        names = []
        errors['*'] = '[multilb] vip_pools: %s' % cluster_conf.clean(exc)
    for name in dict.fromkeys(names):
        try:
            pool = _load_one(conf, name)
            for other in pools.values():
                if (other.network.version == pool.network.version
                        and other.network.overlaps(pool.network)):
                    raise exceptions.ConfigError(
                        '[%s] cidr: %s overlaps pool %s (%s); pools may not '
                        'overlap' % (section(name), pool.network, other.name,
                                     other.network))
                if other.network_id == pool.network_id:
                    raise exceptions.ConfigError(
                        '[%s] network_id: %s is served by pool %s already' %
                        (section(name), pool.network_id, other.name))
            pools[name] = pool
        except exceptions.ConfigError as exc:
            errors[name] = str(exc)
            for field in ('network_id', 'subnet_id'):
                try:
                    value = conf[section(name)][field]
                except (cfg.Error, KeyError, ValueError):
                    value = None
                if value:
                    broken[value.strip()] = name
    for name, error in errors.items():
        LOG.error('VIP pool %s is disabled: %s', name, error)
    return PoolSet(pools=pools, errors=errors, broken=broken)
