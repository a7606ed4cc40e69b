"""Per-process shared objects: configuration, cluster set, state store.

Octavia builds a new driver object per API request and forks its API workers
and provider agents, so these are created lazily, once per process (keyed by
pid), never at import time.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import threading
import time

from oslo_config import cfg

from multilb import addresses
from multilb import bindings
from multilb import conf as multilb_conf
from multilb.conf import clusters as cluster_conf
from multilb.conf import vip_pools
from multilb import schema
from multilb import state as state_mod
from multilb import store
from multilb import vips

LOG = logging.getLogger(__name__)

SCHEMA_RECHECK = 60.0
"""Seconds an API process trusts the store's key layout version it read
(:meth:`Runtime.checked`): a store upgraded by a newer multilb is refused
within this time."""


class Runtime:
    """Configuration and cluster set now; the state store on first use."""

    def __init__(self, conf):
        multilb_conf.register_opts(conf)
        self.conf = conf
        self.clusters = cluster_conf.load_clusters(conf)
        self.pools = vip_pools.load_pools(conf)
        self.guard = _guard(conf, self.clusters, self.pools)
        self._state = None
        self._placer = None
        self._state_lock = threading.Lock()
        self._schema_verified = None     # monotonic time of the last check

    @property
    def state(self) -> state_mod.State:
        with self._state_lock:
            if self._state is None:
                self._state = state_mod.State(store.get_kv_store(
                    self.conf.multilb.store_url))
            return self._state

    def checked(self):
        """This runtime, once the state store is known to hold the key
        layout this multilb writes (:mod:`multilb.schema`).

        Called by the provider driver before it records a request: an
        octavia-api left on an older multilb during an upgrade must not
        write the old layout into a store a newer multilb upgraded. A
        matching version is trusted for :data:`SCHEMA_RECHECK` seconds; a
        store that records none yet passes (the agents record it).

        :raises StoreSchemaError: the store holds another layout.
        :raises StoreUnavailable: the store could not be read.
        """
        now = time.monotonic()
        verified = self._schema_verified
        if verified is None or now - verified >= SCHEMA_RECHECK:
            found = schema.read(self.state.kv)
            if found is not None:
                schema.check(found.get('version'))
            self._schema_verified = now
        return self

    @property
    def vips(self):
        """A :class:`multilb.vips.VipAllocator` over the state store."""
        return self._over_state(vips.VipAllocator)

    @property
    def bindings(self):
        """A :class:`multilb.bindings.Bindings` over the state store."""
        return self._over_state(bindings.Bindings)

    def _over_state(self, cls):
        state = self.state
        return cls(state.kv, state.has_placement,
                   stale_after=self.conf.multilb.commit_wait_timeout)

    @property
    def placer(self):
        """The process's :class:`multilb.placement.Placer` (lazily)."""
        from multilb import placement  # noqa: circular at import time
        with self._state_lock:
            if self._placer is None:
                self._placer = placement.Placer(self)
            return self._placer


def _guard(conf, clusters, pools):
    """The process's :class:`multilb.addresses.AddressGuard`.

    A broken ``management_cidrs`` fails closed: the guard then refuses
    every address (see :class:`~multilb.addresses.AddressGuard`).
    """
    appliances = set()
    for cluster in clusters.clusters.values():
        appliances |= {ipaddress.ip_address(ip) for ip, _port in
                       cluster.backend_class.management_addresses(
                           cluster.options)}
    try:
        management = addresses.parse_networks(
            conf.multilb.management_cidrs, '[multilb] management_cidrs')
        error = None
    except (ValueError, cfg.ConfigFileValueError) as exc:
        management, error = (), str(exc)
        LOG.error('Every tenant address is refused until this is fixed: %s',
                  error)
    return addresses.AddressGuard(
        management=management, appliances=frozenset(appliances),
        pools=tuple(p.network for p in pools.pools.values()), error=error)


_lock = threading.Lock()
# id(conf) -> (conf, pid, Runtime): the reference keeps the id from being
# reused by a new ConfigOpts (unhashable: no weak mapping); rebuilt after
# a fork.
_cache = {}


def get(conf=None):
    """The process-wide :class:`Runtime` for ``conf`` (default: cfg.CONF)."""
    conf = conf if conf is not None else cfg.CONF
    with _lock:
        owner, pid, found = _cache.get(id(conf), (None, None, None))
        if owner is not conf or pid != os.getpid():
            found = Runtime(conf)
            _cache[id(conf)] = (conf, os.getpid(), found)
        return found


def reset():
    """Forget cached runtimes (tests, config reload)."""
    with _lock:
        _cache.clear()
