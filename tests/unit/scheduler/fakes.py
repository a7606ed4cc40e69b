"""Builders for the scheduler tests (nova's ``FakeHostState`` idea).

:func:`cluster` and :func:`request` build the real frozen values with test
defaults; :func:`options` is a ``[multilb_scheduler]`` group with overrides.
"""

from oslo_config import cfg

from multilb.conf import scheduler as scheduler_conf
from scheduler import cluster_state

FAKE_CAPABILITIES = {
    'listener.protocol': frozenset({'HTTP', 'HTTPS', 'TCP',
                                    'TERMINATED_HTTPS'}),
    'pool.lb_algorithm': frozenset({'ROUND_ROBIN', 'LEAST_CONNECTIONS'}),
}


def cluster(name, **attrs):
    """A :class:`ClusterState`; ``tags``/``projects`` may be lists."""
    attrs.setdefault('backend', 'fake')
    attrs.setdefault('capabilities', FAKE_CAPABILITIES)
    for key in ('tags', 'projects'):
        if key in attrs:
            attrs[key] = frozenset(attrs[key])
    return cluster_state.ClusterState(name=name, **attrs)


def request(project='proj-1', lb='lb-9', **attrs):
    """A :class:`PlacementRequest` of load balancer ``lb``."""
    if 'needs' in attrs:
        attrs['needs'] = frozenset(attrs['needs'])
    return cluster_state.PlacementRequest(loadbalancer_id=lb,
                                          project_id=project, **attrs)


def conf(**overrides):
    """A ConfigOpts with ``[multilb_scheduler]`` registered and overridden."""
    found = cfg.ConfigOpts()
    scheduler_conf.register_opts(found)
    for key, value in overrides.items():
        found.set_override(key, value, scheduler_conf.GROUP)
    return found


def options(**overrides):
    """The ``[multilb_scheduler]`` group that filters and weighers get."""
    return getattr(conf(**overrides), scheduler_conf.GROUP)


def names(clusters):
    return [c.name for c in clusters]


def run(plugin, clusters, req=None):
    """``(kept names, {removed name: reason})`` of a filter."""
    kept, removed = plugin.filter_all(clusters, req or request())
    return names(kept), {c.name: why for c, why in removed}
