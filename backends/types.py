"""Values that cross the backend boundary."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ClusterHealth:
    """What :meth:`ApplianceBackend.probe` found."""

    reachable: bool
    detail: str = ''
    resync: bool = False
    """True when nodes answer but disagree (one restarted empty, say): the
    agent then re-applies every load balancer of the cluster."""
    resync_ids: frozenset = frozenset()
    """Load balancers some answering node missed a change of, or that the
    nodes hold differently: the agent re-applies those placed on the
    cluster (the others are orphans, for its sweep). Reported until an
    apply reaches every such node."""


@dataclasses.dataclass(frozen=True)
class ListenerStats:
    """Traffic of one listener (see ``collect_statistics``)."""

    listener_id: str
    active_connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    request_errors: int = 0
    total_connections: int = 0

    def __add__(self, other):
        """Sum of two readings (of two nodes, or two periods)."""
        return ListenerStats(
            listener_id=self.listener_id,
            active_connections=(self.active_connections +
                                other.active_connections),
            bytes_in=self.bytes_in + other.bytes_in,
            bytes_out=self.bytes_out + other.bytes_out,
            request_errors=self.request_errors + other.request_errors,
            total_connections=(self.total_connections +
                               other.total_connections))
