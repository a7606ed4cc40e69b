"""What the scheduler sees: a snapshot of each cluster and the request.

Both are plain frozen values built by :mod:`multilb.placement` from the
configuration and one read of the state store; filters and weighers never do
I/O.
"""

from __future__ import annotations

import dataclasses
import typing


@dataclasses.dataclass(frozen=True)
class ClusterState:
    """One enabled cluster at decision time."""

    name: str
    backend: str
    max_loadbalancers: int = 0
    """0 means unlimited."""
    placed: int = 0
    """Load balancers placed (reserved) on the cluster."""
    tags: frozenset = frozenset()
    projects: frozenset = frozenset()
    """If not empty, the cluster is dedicated to these projects."""
    draining: bool = False
    """An operator drained it (``multilb-manage cluster drain``)."""
    healthy: typing.Optional[bool] = None
    """The agent's last probe: True/False, None when unknown or stale."""
    breaker_open: bool = False
    listeners: int = 0
    """Listeners the agent applied on the cluster."""
    max_listeners: int = 0
    """0 means unlimited."""
    recent_errors: int = 0
    """Failed appliance operations in the agent's recent window."""
    project_placed: int = 0
    """Load balancers of the requesting project on this cluster."""
    capabilities: typing.Mapping[str, frozenset] = dataclasses.field(
        default_factory=dict)
    """``{'listener.protocol': frozenset({...}), ...}`` from the backend:
    keys are ``<object type>.<field>`` (see :mod:`backends.base`)."""
    check_supported: typing.Optional[typing.Callable] = dataclasses.field(
        default=None, compare=False)
    """The backend class's ``check_supported(object type, fields)``: pure,
    raises :class:`backends.exceptions.UnsupportedFeature` for what the
    capability sets cannot say (a listener's ``connection_limit`` on
    Caddy). None: the sets say everything."""

    @property
    def free(self):
        """Free slots; None when unlimited."""
        if not self.max_loadbalancers:
            return None
        return max(0, self.max_loadbalancers - self.placed)


@dataclasses.dataclass(frozen=True)
class PlacementRequest:
    """What a new load balancer needs."""

    loadbalancer_id: str
    project_id: str
    flavor: typing.Mapping = dataclasses.field(default_factory=dict)
    """The flavor metadata (validated by :mod:`multilb.flavors`)."""
    availability_zone: typing.Mapping = dataclasses.field(
        default_factory=dict)
    """The availability-zone profile metadata (validated)."""
    listeners: int = 0
    """Listeners in the new load balancer's graph."""
    needs: frozenset = frozenset()
    """``{(capability key, value), ...}`` the graph uses, e.g.
    ``('listener.protocol', 'TERMINATED_HTTPS')``."""
    objects: tuple = dataclasses.field(default=(), compare=False)
    """``((object type, fields), ...)``: every object of the graph but the
    load balancer, for :attr:`ClusterState.check_supported`."""
