"""What the scheduler knows about one cluster at decision time."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ClusterState:
    """A snapshot of one enabled cluster (configuration plus load)."""

    name: str
    backend: str
    max_loadbalancers: int
    """0 means unlimited."""
    placed: int = 0
    """Load balancers currently placed (reserved) on the cluster."""

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
    flavor: dict = dataclasses.field(default_factory=dict)
    availability_zone: dict = dataclasses.field(default_factory=dict)
