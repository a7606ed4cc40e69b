"""Which addresses a tenant may point a load balancer at. Pure, no I/O.

Every address a tenant controls (a member's ``address`` and
``monitor_address``, a requested or Neutron-allocated VIP) is hostile: an
appliance proxies to members and health-checks them *from its own network
namespace*, so a member at ``127.0.0.1:<admin port>`` or at a controller's
address turns a tenant's load balancer into a proxy to the appliance's admin
API or the management network. :class:`AddressGuard` refuses, for every
such field:

* addresses that are not tenant destinations at all: unspecified and
  ``0.0.0.0/8``, loopback, link-local, multicast, reserved ranges
  (``240.0.0.0/4``, IPv6 reserved blocks), deprecated site-local;
* IPv6 addresses that embed an IPv4 destination and would reach it through
  a translator or tunnel: IPv4-mapped ``::ffff:0:0/96``, NAT64
  ``64:ff9b::/96`` and ``64:ff9b:1::/48``, 6to4 ``2002::/16`` and Teredo
  ``2001::/32``;
* every address of a configured appliance endpoint (any cluster), and the
  operator's ``[multilb] management_cidrs``;
* for members, when the cluster sets ``member_networks``, anything outside
  them.

Documentation and benchmarking ranges (``192.0.2.0/24``,
``198.18.0.0/15``, ``2001:db8::/32``, ...) and private ranges are allowed:
clouds really use them (octavia-tempest-plugin's members are 192.0.2.x).
Addresses multilb hands out from an operator's VIP pool are not checked
(:mod:`multilb.vips`): the operator chose them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import typing

_EMBEDDING = (
    (ipaddress.ip_network('::ffff:0:0/96'), 'an IPv4-mapped IPv6 address'),
    (ipaddress.ip_network('64:ff9b::/96'), 'a NAT64 address (embeds IPv4)'),
    (ipaddress.ip_network('64:ff9b:1::/48'),
     'a local-use NAT64 address (embeds IPv4)'),
    (ipaddress.ip_network('2002::/16'), 'a 6to4 address (embeds IPv4)'),
    (ipaddress.ip_network('2001::/32'), 'a Teredo address (embeds IPv4)'),
)
_THIS_NETWORK = ipaddress.ip_network('0.0.0.0/8')


class AddressRefused(ValueError):
    """An address a tenant may not use; ``str()`` says which and why."""

    def __init__(self, field, value, reason):
        super().__init__('%s %s is not allowed: %s' % (field, value, reason))
        self.field, self.value, self.reason = field, value, reason


def parse_networks(values, what):
    """``[ip_network]`` of CIDR strings; ValueError naming ``what``."""
    found = []
    for value in values or ():
        try:
            found.append(ipaddress.ip_network(str(value).strip(),
                                              strict=False))
        except ValueError:
            raise ValueError('%s: %r is not a CIDR (for example 10.0.0.0/24 '
                             'or 2001:db8::/64)' % (what, value)) from None
    return tuple(found)


def kind_problem(ip):
    """Why ``ip`` can never be a tenant destination, or None."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return 'an IPv4-mapped IPv6 address'
    if ip.is_unspecified or (ip.version == 4 and ip in _THIS_NETWORK):
        return 'an unspecified ("this host") address'
    if ip.is_loopback:
        return 'a loopback address'
    if ip.is_link_local:
        return 'a link-local address'
    if ip.is_multicast:
        return 'a multicast address'
    if ip.version == 4 and ip == ipaddress.IPv4Address('255.255.255.255'):
        return 'the broadcast address'
    if ip.version == 6:
        for network, why in _EMBEDDING:
            if ip in network:
                return why
        if ip.is_site_local:
            return 'a deprecated site-local address'
    if ip.is_reserved:
        return 'a reserved address'
    return None


@dataclasses.dataclass(frozen=True)
class AddressGuard:
    """The addresses tenants may not use, as configured.

    :param management: networks tenants must never reach (the operator's
        ``management_cidrs``).
    :param appliances: addresses of configured appliance endpoints.
    :param pools: networks of multilb's VIP pools (VIPs inside are exempt).
    :param error: why the configuration is unusable; every address is then
        refused (fail closed).
    """

    management: tuple = ()
    appliances: frozenset = frozenset()
    pools: tuple = ()
    error: typing.Optional[str] = None

    def problem(self, value, allowed=()):
        """Why ``value`` may not be used, or None.

        :param allowed: if not empty, the networks the address must be in
            (a cluster's ``member_networks``).
        """
        if self.error:
            return ('the provider\'s address rules are misconfigured; '
                    'please contact your cloud operator')
        try:
            ip = ipaddress.ip_address(str(value).strip())
        except ValueError:
            return 'not an IP address'
        why = kind_problem(ip)
        if why:
            return why
        if ip in self.appliances:
            return 'it is an appliance management address'
        for network in self.management:
            if ip.version == network.version and ip in network:
                return 'it is in a management network (%s)' % network
        if allowed and not any(ip.version == n.version and ip in n
                               for n in allowed):
            return 'it is outside the networks this cluster reaches (%s)' % (
                ', '.join(str(n) for n in allowed))
        return None

    def check(self, field, value, allowed=()):
        """:raises AddressRefused: naming ``field`` and ``value``."""
        why = self.problem(value, allowed)
        if why:
            raise AddressRefused(field, value, why)

    def in_pool(self, value):
        try:
            ip = ipaddress.ip_address(str(value).strip())
        except ValueError:
            return False
        return any(ip.version == n.version and ip in n for n in self.pools)

    def check_vip(self, field, value):
        """A VIP not handed out from a pool: the same rules as members."""
        if value and not self.in_pool(value):
            self.check(field, value)

    def check_graph(self, graph, member_networks=()):
        """Every tenant address of a load balancer graph (or sub-graph).

        ``graph`` is the plain dict of :mod:`backends.base`; missing parts
        are skipped, so a single pool or member dict works too.

        :raises AddressRefused: for the first refused address.
        """
        for field, value, is_member in tenant_addresses(graph):
            if is_member:
                self.check(field, value, member_networks)
            else:
                self.check_vip(field, value)


def tenant_addresses(graph) -> typing.Iterator[tuple[str, str, bool]]:
    """``(field, value, is_member)`` for every address in ``graph``."""
    if graph.get('vip_address'):
        yield 'VIP address', graph['vip_address'], False
    for vip in graph.get('additional_vips') or ():
        if vip.get('ip_address'):
            yield 'additional VIP address', vip['ip_address'], False
    pools = list(graph.get('pools') or ())
    members = list(graph.get('members') or ())
    for pool in pools:
        members += list(pool.get('members') or ())
    if 'member_id' in graph:
        members.append(graph)
    for member in members:
        if member.get('address'):
            yield 'member address', member['address'], True
        if member.get('monitor_address'):
            yield 'member monitor_address', member['monitor_address'], True
