"""Options for oslo-config-generator (``oslo.config.opts: multilb``).

Per-cluster sections are documented under the placeholder
``[cluster:example]`` and each VIP pool under ``[vip_pool:example]``;
every cluster option may also be set in ``[cluster_defaults]``.
"""

import copy

from multilb.conf import clusters
from multilb.conf import core
from multilb.conf import scheduler
from multilb.conf import vip_pools
from multilb import registry


def _backend_opts():
    found = []
    for name, backend_class in sorted(
            registry.installed_backend_classes().items()):
        for opt in backend_class.get_config_options():
            doc = copy.copy(opt)
            doc.help = '(backend %s) %s' % (name, opt.help)
            found.append(doc)
    return found


def list_opts():
    cluster_opts = clusters.opts + _backend_opts()
    return core.list_opts() + scheduler.list_opts() + [
        (clusters.DEFAULTS_GROUP, cluster_opts),
        (clusters.SECTION_PREFIX + 'example', cluster_opts),
        (vip_pools.SECTION_PREFIX + 'example', vip_pools.opts),
    ]
