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

_registered = set()


def register_opts(conf=CONF):
    if id(conf) in _registered:
        return
    core.register_opts(conf)
    clusters.register_defaults(conf)
    scheduler.register_opts(conf)
    _registered.add(id(conf))
