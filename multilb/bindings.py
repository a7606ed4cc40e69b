"""VIP address and port reservations, one listener per address:port.

On a backend that binds its listeners' addresses itself
(:attr:`backends.base.ApplianceBackend.BINDS_ADDRESSES`, such as caddy), two
listeners on the same address and port in one routing domain cannot both be
served: the second would fail on the appliance, later, as an ERROR. So the
driver reserves ``bind/<routing domain>/<address>/<port>`` in the state
store in the same commit that records the listener (or places the load
balancer), and refuses a taken address:port at the API with HTTP 409.

Reservations are released in the commits that end their listener: the
agent's completion after an apply whose graph no longer has the listener
(deleted, or its create rolled back), and the release of the whole load
balancer. A reservation whose load balancer has no placement any more and
that is older than ``stale_after`` is taken over (a request that failed
between the reservation and the placement).

Backends that bind nothing (fake) reserve nothing: Octavia's own tempest
suite gives every load balancer the same no-op VIP.
"""

from __future__ import annotations

import ipaddress
import json
import time

PREFIX = 'bind/'


class PortRefused(Exception):
    """A listener port that is the appliance's own (its admin endpoint)."""


class InUse(Exception):
    """The address:port is bound by another listener."""


def _key(domain, address, port):
    return '%s%s/%s/%d' % (PREFIX, domain, ipaddress.ip_address(address),
                           port)


def _dump(value):
    return json.dumps(value, sort_keys=True, separators=(',', ':'))


def vips_of(graph):
    """The VIP and additional VIP addresses of a graph or record."""
    found = [graph.get('vip_address')] + [
        v.get('ip_address') for v in graph.get('additional_vips') or ()]
    return [a for a in found if a]


def addresses_for(cluster, vips):
    """What ``cluster`` binds a load balancer with these VIPs to."""
    return cluster.backend_class.bound_addresses(cluster.options, vips)


def keys_for(cluster, addresses, listeners):
    """``{key: listener_id}`` for listeners bound on ``addresses``.

    :raises PortRefused: a listener port is an appliance admin endpoint
        on one of the addresses (or the addresses are a wildcard).
    """
    if not addresses:
        return {}
    admin = cluster.backend_class.management_addresses(cluster.options)
    found = {}
    for listener in listeners:
        port = listener['protocol_port']
        for address in addresses:
            ip = ipaddress.ip_address(address)
            for admin_ip, admin_port in admin:
                if admin_port == port and (
                        ip.is_unspecified
                        or ip == ipaddress.ip_address(admin_ip)):
                    raise PortRefused(
                        'listener protocol_port %d is not allowed on this '
                        'cluster: it is the appliance\'s admin port' % port)
            found[_key(cluster.routing_domain or cluster.name, address,
                       port)] = listener['listener_id']
    return found


def bind_record(cluster, record, graph, refused_keeps=False):
    """Set ``record``'s ``addresses`` (the VIP addresses ``graph`` binds
    on ``cluster``) and ``binds`` (``{key: listener_id}``); return the
    binds.

    :raises PortRefused: see :func:`keys_for`; unless ``refused_keeps``,
        which keeps the binds the record has (a refused port never got
        past the API: nothing new to reserve).
    """
    bound = addresses_for(cluster, vips_of(graph))
    try:
        binds = keys_for(cluster, bound, graph['listeners'])
    except PortRefused:
        if not refused_keeps:
            raise
        binds = dict(record.get('binds') or {})
    record['addresses'], record['binds'] = bound, binds
    return binds


def release_ops(record, deletes):
    """Add the removal of every reservation of ``record`` to a commit."""
    deletes.extend(sorted(record.get('binds') or {}))


class Bindings:
    """Reads and reserves ``bind/`` keys."""

    def __init__(self, kv, has_placement, stale_after=60.0):
        self.kv = kv
        self.has_placement = has_placement
        self.stale_after = stale_after

    def reserve_ops(self, lb_id, wanted, now=None):
        """``(checks, puts)`` that reserve ``wanted`` for ``lb_id``.

        :param wanted: ``{key: listener_id}``.
        :raises InUse: a key is held by another live listener.
        """
        now = time.time() if now is None else now
        checks, puts = {}, {}
        for key, listener_id in sorted(wanted.items()):
            entry = self.kv.get(key)
            if entry is not None:
                holder = json.loads(entry.value)
                if (holder.get('lb'), holder.get('listener')) == (
                        lb_id, listener_id):
                    continue    # a retried request
                if (now - holder.get('at', now) <= self.stale_after
                        or self.has_placement(holder.get('lb'))):
                    _domain, address, port = key[len(PREFIX):].rsplit('/', 2)
                    raise InUse('%s port %s is already used by another '
                                'listener' % (address, port))
            checks[key] = entry.version if entry else None
            puts[key] = _dump({'lb': lb_id, 'listener': listener_id,
                               'at': now})
        return checks, puts
