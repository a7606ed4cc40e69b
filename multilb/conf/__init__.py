"""multilb configuration: option declarations and the validated cluster set.

Options are registered on demand (never at import time) by
:func:`register_opts`, which is cheap and idempotent: Octavia builds a new
driver object for every API request.
"""

from oslo_config import cfg

from multilb.conf import clusters
from multilb.conf import core
from multilb.conf import scheduler

CONF = cfg.CONF

# id(conf) -> conf. The reference keeps the id from being reused by a new
# ConfigOpts (they are unhashable, so no WeakSet); there are few of them.
_registered = {}


def register_opts(conf=CONF):
    if _registered.get(id(conf)) is conf:
        return
    core.register_opts(conf)
    clusters.register_defaults(conf)
    scheduler.register_opts(conf)
    _registered[id(conf)] = conf
