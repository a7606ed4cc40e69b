"""Per-process shared objects: configuration, cluster set, state store.

Octavia builds a new driver object per API request and forks its API workers
and provider agents, so these are created lazily, once per process (keyed by
pid), never at import time.
"""

from __future__ import annotations

import dataclasses
import os
import threading

from oslo_config import cfg

from multilb import conf as multilb_conf
from multilb.conf import clusters as cluster_conf
from multilb import state as state_mod
from multilb import store


@dataclasses.dataclass
class Runtime:
    conf: cfg.ConfigOpts
    clusters: cluster_conf.ClusterSet
    state: state_mod.State


_lock = threading.Lock()
_cache = {}


def get(conf=None):
    """The process-wide :class:`Runtime` for ``conf`` (default: cfg.CONF)."""
    conf = conf if conf is not None else cfg.CONF
    key = (os.getpid(), id(conf))
    with _lock:
        found = _cache.get(key)
        if found is None:
            multilb_conf.register_opts(conf)
            found = Runtime(
                conf=conf,
                clusters=cluster_conf.load_clusters(conf),
                state=state_mod.State(store.get_kv_store(
                    conf.multilb.store_url)))
            _cache[key] = found
        return found


def reset():
    """Forget cached runtimes (tests, config reload)."""
    with _lock:
        _cache.clear()
