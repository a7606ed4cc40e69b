"""Scheduler weighers: which of the clusters the filters kept is best.

A weigher is a class registered in the ``multilb.scheduler.weighers``
entry-point group under its class name, and enabled by
``[multilb_scheduler] enabled_weighers``. The scheduler normalises each
weigher's raw values to 0..1 over the candidates (:func:`normalize`),
multiplies them by the weigher's multiplier and sums; the highest total
wins.
"""

from __future__ import annotations

import abc
import re
import typing

from scheduler import cluster_state

ClusterState = cluster_state.ClusterState
PlacementRequest = cluster_state.PlacementRequest


def normalize(values: typing.Sequence[float],
              minval: typing.Optional[float] = None,
              maxval: typing.Optional[float] = None) -> list[float]:
    """Scale ``values`` to 0..1: ``(v - minval) / (maxval - minval)``.

    As nova's ``weights.normalize``: the bounds default to the smallest and
    largest value; when they are equal every value becomes 0.0, so a
    weigher that cannot tell the candidates apart does not change the
    ranking.
    """
    if not values:
        return []
    low = min(values) if minval is None else minval
    high = max(values) if maxval is None else maxval
    span = high - low
    if span == 0:
        return [0.0] * len(values)
    return [(value - low) / span for value in values]


def multiplier_option(class_name: str) -> str:
    """``FreeCapacityWeigher`` -> ``free_capacity_weight_multiplier``."""
    stem = class_name[:-len('Weigher')] if class_name.endswith(
        'Weigher') else class_name
    return re.sub(r'(?<!^)(?=[A-Z])', '_', stem).lower() + \
        '_weight_multiplier'


class BaseClusterWeigher(abc.ABC):
    """Score the clusters that passed the filters; higher is better.

    :class:`scheduler.manager.ClusterScheduler` builds one instance per
    enabled weigher when the process starts, and calls it in the API request
    of every load balancer create, after the filters, when more than one
    cluster is left.

    A weigher returns raw numbers in its own unit (free slots, errors, ...);
    normalising them and applying the multiplier is the scheduler's job, so
    that operators tune weighers against each other with the multipliers
    only. Like filters, weighers are pure: no I/O, no clock, no randomness,
    no state kept between calls.
    """

    minval: typing.ClassVar[typing.Optional[float]] = None
    """Fixed lower bound for :func:`normalize` (default: the smallest
    value among the candidates)."""
    maxval: typing.ClassVar[typing.Optional[float]] = None
    """Fixed upper bound for :func:`normalize` (default: the largest)."""

    def __init__(self, options) -> None:
        """:param options: the ``[multilb_scheduler]`` option group.

        The multiplier is the option named by :func:`multiplier_option`;
        a weigher whose option is not registered gets 1.0.
        """
        self.multiplier = float(getattr(
            options, multiplier_option(type(self).__name__), 1.0))

    def weight_multiplier(self, request: PlacementRequest) -> float:
        """The multiplier for this request; 0 skips the weigher."""
        return self.multiplier

    @abc.abstractmethod
    def weigh(self, cluster: ClusterState,
              request: PlacementRequest) -> float:
        """The raw value of one cluster for ``request``."""

    def weigh_all(self, clusters: typing.Sequence[ClusterState],
                  request: PlacementRequest) -> list[float]:
        """Raw values of every candidate, in order.

        Override instead of :meth:`weigh` when a value depends on the other
        candidates.
        """
        return [self.weigh(cluster, request) for cluster in clusters]
