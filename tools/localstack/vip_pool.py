"""The stack's loopback VIP pool: each load balancer's VIP is its own real
address of this host.

Linux treats all of 127.0.0.0/8 as local, so a multilb VIP pool
(``[vip_pool:loopback]``, doc/source/admin/vip-pools.rst) inside it gives
every load balancer a loopback address of its own that the Caddy nodes
bind exactly: what ``openstack loadbalancer show`` prints as the VIP is
where traffic goes, and two load balancers (of two projects) can both
listen on port 80 of one cluster.

Which /24: the member lab's, moved into 127/8.  A lab holds
``198.A.X.0/24`` of 198.18.0.0/15 (``netns.py``: chosen under a
machine-wide lock, held by the kernel while the lab exists, so no two
running stacks or test runs share it); its stack's pool is
``127.A.X.0/24``, equally unique among stacks with a member lab.  A stack
without a lab must name its pool (``--vip-pool``).  Either way the /24 is
refused (:class:`PoolError`, naming what is in the way) if

* a socket of this host listens on an address of it (TCP ``LISTEN``, or
  any bound UDP socket; ``/proc/net/{tcp,udp}{,6}``): a stack whose lab is
  gone but whose nodes still serve, a test's own pool, or anything else.
  Connections are not counted: those of a stack just stopped linger in
  ``TIME_WAIT`` for a minute and hold nothing;
* a route more specific than 127.0.0.0/8 (``ip route show table all``)
  covers or overlaps it: an address configured on ``lo``, a test's route.

The functional tests draw their pools from 127.64.0.0 - 127.126.255.255
(tests/functional/test_tenant_attacks.py), never from 127.18/127.19.
"""

import ipaddress
import os

from .netns import LAB_RANGE, routes

NAME = 'loopback'
# The "network" of the pool: Octavia's no-op network driver invents
# networks, so any UUID; requests are matched by the subnet.
NETWORK_ID = '5a1b0000-0000-4000-8000-000000000127'
# The subnet the quick start (and test_localstack) create load balancers
# on: any UUID, the no-op network driver accepts it.
SUBNET_ID = '11111111-2222-3333-4444-555555555555'
LOOPBACK = ipaddress.ip_network('127.0.0.0/8')
PROC_NET = ('/proc/net/tcp', '/proc/net/udp', '/proc/net/tcp6',
            '/proc/net/udp6')
TCP_LISTEN = '0A'   # the st column of /proc/net/tcp


class PoolError(RuntimeError):
    """The VIP pool's range is not usable here (what is in the way)."""


def for_lab(lab_subnet):
    """``127.A.X.0/24`` for the member lab's ``198.A.X.0/24``."""
    lab_subnet = ipaddress.ip_network(lab_subnet)
    if not lab_subnet.subnet_of(LAB_RANGE) or lab_subnet.prefixlen != 24:
        raise PoolError('member lab subnet %s is not a /24 of %s'
                        % (lab_subnet, LAB_RANGE))
    octets = str(lab_subnet.network_address).split('.')
    return ipaddress.ip_network('127.%s.%s.0/24' % (octets[1], octets[2]))


def _address(hex_address):
    """An address of ``/proc/net/*``: 32-bit words in host byte order
    (little endian here)."""
    raw = bytes.fromhex(hex_address)
    raw = b''.join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if ip.version == 6 and ip.ipv4_mapped:
        return ip.ipv4_mapped
    return ip


def bound_sockets(paths=PROC_NET):
    """``[(address, port, table)]`` of the listening TCP sockets and the
    UDP sockets of this network namespace."""
    found = []
    for path in paths:
        try:
            with open(path) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 4 or ':' not in fields[1]:
                continue
            if 'tcp' in os.path.basename(path) and fields[3] != TCP_LISTEN:
                continue
            address, port = fields[1].rsplit(':', 1)
            try:
                found.append((_address(address), int(port, 16),
                              os.path.basename(path)))
            except ValueError:
                continue
    return found


def check(cidr, route_list=None, sockets=None):
    """Raise :class:`PoolError` if ``cidr`` is not inside 127.0.0.0/8 or
    a socket or a route of this host is in the way; returns the network.
    """
    try:
        network = ipaddress.ip_network(cidr)
    except ValueError as exc:
        raise PoolError('VIP pool %s: not a CIDR (%s)' % (cidr, exc)) from None
    if network.version != 4 or not network.subnet_of(LOOPBACK):
        raise PoolError('VIP pool %s: must be inside %s (loopback: every '
                        'address is local, nothing leaves this host)'
                        % (network, LOOPBACK))
    if network.num_addresses < 4:
        raise PoolError('VIP pool %s: too small (a /30 or larger)'
                        % network)
    route_list = routes() if route_list is None else route_list
    sockets = bound_sockets() if sockets is None else sockets
    used = sorted({'%s:%d (%s)' % (ip, port, table)
                   for ip, port, table in sockets if ip in network})
    if used:
        raise PoolError(
            'VIP pool %s clashes with sockets listening on this host: %s '
            '(`ss -tulnp` shows who; another stack or test run may be using '
            'this range)' % (network, ', '.join(used[:5])))
    hit = [line for net, line in route_list
           if net.version == 4 and net.prefixlen > LOOPBACK.prefixlen
           and net.overlaps(network)]
    if hit:
        raise PoolError('VIP pool %s clashes with route(s) of this host '
                        '(an address or range already configured inside '
                        '127.0.0.0/8): %s' % (network, '; '.join(hit)))
    return network


class LoopbackPool:
    """The ``[vip_pool:loopback]`` of a stack and its ``describe()``."""

    def __init__(self, cidr, clusters, name=NAME, network_id=NETWORK_ID,
                 subnet_id=SUBNET_ID, derived_from=None):
        self.cidr = ipaddress.ip_network(cidr)
        self.clusters = list(clusters)
        self.name = name
        self.network_id = network_id
        self.subnet_id = subnet_id
        self.derived_from = derived_from

    def describe(self):
        return {'name': self.name, 'cidr': str(self.cidr),
                'network_id': self.network_id, 'subnet_id': self.subnet_id,
                'clusters': self.clusters,
                'derived_from': (str(self.derived_from)
                                 if self.derived_from else None)}
