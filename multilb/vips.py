"""VIPs multilb hands out from operators' address pools.

Octavia calls the driver's ``create_vip_port`` inside the API request of
every load balancer create, before ``loadbalancer_create``, with the LB id,
the project id and the VIP the user asked for, but no flavor or
availability zone. When the requested network has a pool
(:mod:`multilb.conf.vip_pools`), :class:`VipAllocator` gives the load
balancer an address of its own:

* one store key per handed-out address, ``vip/<pool>/<address>``, written
  with a compare-and-swap commit, so two API workers never hand out the
  same address (pools may not overlap, so an address is unique in the
  whole fleet);
* a released address (the load balancer is deleted, or its create rolled
  back) stays in quarantine for the pool's ``quarantine`` seconds; the
  release is part of the commit that removes the placement
  (:meth:`release_ops`);
* an address handed out to a create that never reached
  ``loadbalancer_create`` (the API request failed in between) is taken
  back once it is older than ``stale_after`` and no placement exists.

The VIP "port" is multilb's: a UUID returned to Octavia that no Neutron
port has, never marked ``octavia_owned`` (Octavia would ask its network
driver to delete a port that does not exist).
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
import uuid

LOG = logging.getLogger(__name__)

PREFIX = 'vip/'
ATTEMPTS = 20


class PoolExhausted(Exception):
    """No address of the pool is free (or out of quarantine)."""


class AddressInUse(Exception):
    """The requested address is held by another load balancer."""


def _key(pool_name, address):
    return '%s%s/%s' % (PREFIX, pool_name, address)


def _dump(value):
    return json.dumps(value, sort_keys=True, separators=(',', ':'))


def release_ops(record, now, puts):
    """Add the quarantine of ``record``'s pool VIP to a commit's puts."""
    vip = record.get('vip') or {}
    if vip.get('pool') and vip.get('address'):
        puts[_key(vip['pool'], vip['address'])] = _dump({
            'state': 'quarantine', 'lb': record.get('id'),
            'until': now + float(vip.get('quarantine', 0.0))})


class VipAllocator:
    """Hands out and finds pool VIPs in the state store."""

    def __init__(self, kv, has_placement, stale_after=60.0):
        """:param has_placement: ``f(lb_id) -> bool``, True while the load
        balancer is placed (its allocation is in use).
        :param stale_after: seconds after which an allocation whose load
            balancer was never placed is taken back.
        """
        self.kv = kv
        self.has_placement = has_placement
        self.stale_after = stale_after

    def held(self, pool):
        """``{ip_address: (value, version)}`` of every key of the pool."""
        prefix = PREFIX + pool.name + '/'
        found = {}
        for entry in self.kv.get_prefix(prefix):
            try:
                ip = ipaddress.ip_address(entry.key[len(prefix):])
            except ValueError:
                continue
            found[ip] = (json.loads(entry.value), entry.version)
        return found

    def _free(self, value, now):
        """True if an entry no longer holds its address."""
        if value.get('state') == 'quarantine':
            return now >= value.get('until', 0)
        return (now - value.get('at', now) > self.stale_after
                and not self.has_placement(value.get('lb')))

    def allocate(self, pool, lb_id, project_id, requested=None, now=None):
        """Hand out an address of ``pool`` to ``lb_id``.

        Idempotent: a load balancer that already holds an address of the
        pool gets it again (a retried request).

        :param requested: the address the user asked for, if any (the
            caller checked it is in the pool).
        :returns: ``{'address': str, 'port_id': str}``.
        :raises AddressInUse: ``requested`` is held (or in quarantine).
        :raises PoolExhausted: no address is free.
        """
        wanted = ipaddress.ip_address(requested) if requested else None
        for _attempt in range(ATTEMPTS):
            now = time.time() if now is None else now
            held = self.held(pool)
            for ip, (value, _version) in held.items():
                if value.get('state') == 'allocated' and value.get(
                        'lb') == lb_id and (wanted is None or ip == wanted):
                    return {'address': str(ip), 'port_id': value['port']}
            if wanted is not None:
                candidates = [wanted]
            else:
                candidates = (ip for ip in pool.addresses()
                              if ip not in held or self._free(held[ip][0],
                                                              now))
            for ip in candidates:
                value, version = held.get(ip, (None, None))
                if value is not None and not self._free(value, now):
                    raise AddressInUse(self._why(value, now))
                port_id = str(uuid.uuid4())
                entry = {'state': 'allocated', 'lb': lb_id,
                         'project': project_id, 'port': port_id, 'at': now}
                if self.kv.commit(checks={_key(pool.name, ip): version},
                                  puts={_key(pool.name, ip): _dump(entry)}):
                    LOG.info('VIP %s of pool %s handed out to load balancer '
                             '%s of project %s', ip, pool.name, lb_id,
                             project_id)
                    return {'address': str(ip), 'port_id': port_id}
                break   # lost a race: read again
            else:
                raise PoolExhausted('pool %s has no free address' %
                                    pool.name)
            now = None
        raise RuntimeError('VIP allocation in pool %s lost %d races in a row'
                           % (pool.name, ATTEMPTS))

    @staticmethod
    def _why(value, now):
        if value.get('state') == 'quarantine':
            return ('it was released recently and may be reused in %.0f s'
                    % max(0.0, value.get('until', now) - now))
        return 'it is the VIP of another load balancer'

    def give_back(self, pool_name, address, lb_id):
        """Forget an allocation that never served (a refused create): no
        quarantine. Only if ``lb_id`` still holds it."""
        key = _key(pool_name, address)
        entry = self.kv.get(key)
        if entry is None:
            return
        value = json.loads(entry.value)
        if value.get('state') == 'allocated' and value.get('lb') == lb_id:
            self.kv.commit(checks={key: entry.version}, deletes=[key])
            LOG.info('VIP %s of pool %s given back: load balancer %s was '
                     'not created', address, pool_name, lb_id)

    def holder(self, pool_name, address):
        """The allocation entry of an address, or None."""
        entry = self.kv.get(_key(pool_name, address))
        return json.loads(entry.value) if entry else None

    def usage(self, pool, now=None):
        """``{'size', 'allocated', 'quarantined', 'free'}`` of a pool."""
        now = time.time() if now is None else now
        size = pool.network.num_addresses - sum(
            1 for ip in pool.network_edges() + list(pool.exclude)
            if ip in pool.network)
        allocated = quarantined = 0
        for ip, (value, _version) in self.held(pool).items():
            if not pool.contains(ip) or self._free(value, now):
                continue
            if value.get('state') == 'quarantine':
                quarantined += 1
            else:
                allocated += 1
        return {'size': size, 'allocated': allocated,
                'quarantined': quarantined,
                'free': size - allocated - quarantined}
