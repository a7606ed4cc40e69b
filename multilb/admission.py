"""What the driver checks and reserves before it records a request.

Tenant safety at the API (the agent checks addresses again before anything
reaches an appliance):

* tenant addresses (members, monitor addresses, VIPs not from a pool) pass
  :class:`multilb.addresses.AddressGuard` and the cluster's
  ``member_networks``;
* VIPs on a network with a pool are handed out by multilb
  (:mod:`multilb.vips`, Octavia's ``create_vip_port``);
* on backends that bind addresses, each listener's VIP:port is reserved in
  its routing domain (:mod:`multilb.bindings`).

Every refusal is an octavia-lib exception whose text names the field, the
value and what is allowed: ``UnsupportedOptionError`` (HTTP 501, the only
non-500 refusal a provider has) or ``Conflict`` (HTTP 409, "The VIP IP
address is already in use").
"""

from __future__ import annotations

import logging

from octavia_lib.api.drivers import exceptions as lib_exc

from multilb import addresses
from multilb import bindings
from multilb import vips as vips_mod

LOG = logging.getLogger(__name__)


def unsupported(message):
    return lib_exc.UnsupportedOptionError(user_fault_string=message,
                                          operator_fault_string=message)


def conflict(message):
    return lib_exc.Conflict(user_fault_string=message,
                            operator_fault_string=message)


# -- addresses ---------------------------------------------------------------


def check_addresses(rt, graph, cluster=None):
    """Refuse a graph (or pool, member, member change) with a hostile
    address. ``cluster``: the cluster it will live on, if known."""
    networks = cluster.member_networks if cluster is not None else ()
    try:
        rt.guard.check_graph(graph, networks)
    except addresses.AddressRefused as exc:
        raise unsupported(str(exc)) from None


def allowed_clusters(rt, lb, pool=None):
    """Names of the clusters that may take ``lb``, or None for any.

    A cluster qualifies if its ``member_networks`` (when set) hold every
    member address of the graph and, for a pool VIP, if it lists the pool.

    :raises UnsupportedOptionError: no enabled cluster qualifies.
    """
    members = [(f, v) for f, v, is_member in
               addresses.tenant_addresses(lb) if is_member]
    if pool is None and not any(c.member_networks for c in
                                rt.clusters.clusters.values()):
        return None
    found = set()
    for name, cluster in rt.clusters.clusters.items():
        if pool is not None and pool.name not in cluster.vip_pools:
            continue
        if all(rt.guard.problem(v, cluster.member_networks) is None
               for _f, v in members):
            found.add(name)
    if not found:
        if pool is not None:
            raise unsupported('no appliance cluster serves VIPs of network %s '
                              'with these members' % pool.network_id)
        raise unsupported('no appliance cluster reaches every member '
                          'address of this load balancer')
    return found


# -- VIP pools ---------------------------------------------------------------


def _pool_of(rt, vip):
    network_id = vip.get('vip_network_id')
    subnet_id = vip.get('vip_subnet_id')
    pool = rt.pools.for_request(network_id, subnet_id)
    broken = rt.pools.broken_for(network_id, subnet_id)
    if pool is None and broken:
        raise lib_exc.DriverError(
            user_fault_string='VIP addresses of network %s cannot be handed '
                              'out right now; nothing was changed. Please '
                              'contact your cloud operator.' % network_id,
            operator_fault_string='VIP pool %s of network %s is disabled: '
                                  '%s' % (broken, network_id,
                                          rt.pools.errors.get(broken)))
    return pool


def create_vip_port(rt, lb_id, project_id, vip, additional):
    """Octavia's ``create_vip_port``: see :mod:`multilb.vips`.

    :raises NotImplementedError: the network has no pool: Octavia allocates
        the port itself (its normal path).
    """
    pool = _pool_of(rt, vip)
    if pool is None:
        raise lib_exc.NotImplementedError(
            user_fault_string='multilb allocates VIPs on pool networks only',
            operator_fault_string='no multilb VIP pool for network %s' %
                                  vip.get('vip_network_id'))
    network_id = vip.get('vip_network_id') or pool.network_id
    where = 'on network %s (multilb hands out its VIPs)' % network_id
    for field in ('vip_port_id', 'vip_qos_policy_id', 'vip_sg_ids'):
        if vip.get(field):
            raise unsupported('%s is not supported %s; supported: none' % (
                field, where))
    if additional:
        raise unsupported('additional_vips are not supported %s' % where)
    requested = vip.get('vip_address')
    if requested and not pool.contains(requested):
        raise unsupported('vip_address %s is not allowed %s; allowed: a free '
                          'address of %s' % (requested, where, pool.network))
    try:
        got = rt.vips.allocate(pool, lb_id, project_id, requested)
    except vips_mod.AddressInUse as exc:
        raise conflict('%s: %s' % (requested, exc)) from None
    except vips_mod.PoolExhausted:
        LOG.error('Load balancer %s: VIP pool %s is exhausted', lb_id,
                  pool.name)
        raise lib_exc.DriverError(
            user_fault_string='No VIP address is free on network %s; '
                              'nothing was changed. Please contact your '
                              'cloud operator.' % pool.network_id,
            operator_fault_string='VIP pool %s is exhausted' %
                                  pool.name) from None
    found = {'vip_address': got['address'], 'vip_port_id': got['port_id'],
             'vip_network_id': network_id,
             'vip_subnet_id': pool.subnet_id or vip.get('vip_subnet_id')}
    return found, []


def pool_vip(rt, lb):
    """``(pool, record fields)`` of ``lb``'s VIP when it is a pool VIP.

    :raises UnsupportedOptionError: the VIP is in a pool's range but was
        not handed out to this load balancer (allocated elsewhere).
    """
    address = lb.get('vip_address')
    for pool in rt.pools.pools.values():
        if address and pool.contains(address):
            holder = rt.vips.holder(pool.name, address) or {}
            if holder.get('lb') != lb['loadbalancer_id']:
                raise unsupported(
                    'VIP address %s is not allowed: it belongs to the '
                    'address pool of network %s, which only multilb hands '
                    'out' % (address, pool.network_id))
            return pool, {'vip': {'pool': pool.name, 'address': address,
                                  'quarantine': pool.quarantine}}
    return None, {}


def give_back(rt, lb, fields):
    """Undo a pool VIP handed out to a create that is refused."""
    vip = fields.get('vip')
    if vip:
        rt.vips.give_back(vip['pool'], vip['address'], lb['loadbalancer_id'])


# -- address:port reservations --------------------------------------------


def _keys(cluster, addresses_, listeners):
    try:
        return bindings.keys_for(cluster, addresses_, listeners)
    except bindings.PortRefused as exc:
        raise unsupported('cluster %s: %s' % (cluster.name, exc)) from None


def placement_reserver(rt, lb):
    """``f(cluster)`` for :meth:`multilb.placement.Placer.place`."""
    def reserve(cluster):
        bound = bindings.addresses_for(cluster, bindings.vips_of(lb))
        wanted = _keys(cluster, bound, lb.get('listeners') or ())
        try:
            checks, puts = rt.bindings.reserve_ops(lb['loadbalancer_id'],
                                                   wanted)
        except bindings.InUse as exc:
            raise conflict(str(exc)) from None
        return checks, puts, {'addresses': bound, 'binds': wanted}
    return reserve


def listener_reservation(rt, cluster, record, listener):
    """``(checks, puts, keys)`` reserving a new listener's address:port."""
    wanted = _keys(cluster, record.get('addresses') or (), [listener])
    try:
        checks, puts = rt.bindings.reserve_ops(record['id'], wanted)
    except bindings.InUse as exc:
        raise conflict(str(exc)) from None
    return checks, puts, sorted(wanted)
