"""Per-process shared objects: configuration, cluster set, state store.

Octavia builds a new driver object per API request and forks its API workers
and provider agents, so these are created lazily, once per process (keyed by
pid), never at import time.
"""

from __future__ import annotations

import os
import threading

from oslo_config import cfg

from multilb import conf as multilb_conf
from multilb.conf import clusters as cluster_conf
from multilb import state as state_mod
from multilb import store


class Runtime:
    """Configuration and cluster set now; the state store on first use."""

    def __init__(self, conf):
        multilb_conf.register_opts(conf)
        self.conf = conf
        self.clusters = cluster_conf.load_clusters(conf)
        self._state = None
        self._placer = None
        self._state_lock = threading.Lock()

    @property
    def state(self) -> state_mod.State:
        with self._state_lock:
            if self._state is None:
                self._state = state_mod.State(store.get_kv_store(
                    self.conf.multilb.store_url))
            return self._state

    @property
    def placer(self):
        """The process's :class:`multilb.placement.Placer` (lazily)."""
        from multilb import placement  # noqa: circular at import time
        with self._state_lock:
            if self._placer is None:
                self._placer = placement.Placer(self)
            return self._placer


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
