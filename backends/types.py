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


@dataclasses.dataclass(frozen=True)
class ListenerStats:
    """Absolute counters of one listener, as the appliance reports them."""

    listener_id: str
    active_connections: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    request_errors: int = 0
    total_connections: int = 0
