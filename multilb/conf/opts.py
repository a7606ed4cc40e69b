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
    """Every installed backend's options, documented once per name: an
    option several backends have (``endpoints``...) says what each of
    them means by it and its default there."""
    found, by_name = [], {}
    for name, backend_class in sorted(
            registry.installed_backend_classes().items()):
        for opt in backend_class.get_config_options():
            if opt.dest in by_name:
                doc = by_name[opt.dest]
                doc.help += ' (backend %s, default %r) %s' % (
                    name, opt.default, opt.help)
                doc.secret = doc.secret or opt.secret
                doc.default = None
                doc.backend_defaults[name] = opt.default
                continue
            doc = copy.copy(opt)
            doc.help = '(backend %s) %s' % (name, opt.help)
            doc.backend_defaults = {name: opt.default}
            by_name[opt.dest] = doc
            found.append(doc)
    return found


def list_opts():
    cluster_opts = clusters.opts + _backend_opts()
    return core.list_opts() + scheduler.list_opts() + [
        (clusters.DEFAULTS_GROUP, cluster_opts),
        (clusters.SECTION_PREFIX + 'example', cluster_opts),
        (vip_pools.SECTION_PREFIX + 'example', vip_pools.opts),
    ]
