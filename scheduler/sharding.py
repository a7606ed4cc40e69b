"""Shuffle sharding: each project's own small, stable subset of clusters.

Rendezvous (highest random weight) hashing: every (project, cluster) pair
gets a pseudo-random score, and a project's shard is the ``size`` clusters
with the highest scores. Adding a cluster moves a project only if the new
cluster scores into its top ``size`` (about ``size / n`` of the projects),
and removing one moves only the projects whose shard held it. Two projects
rarely share their whole shard, so a cluster that breaks, or a project that
floods its clusters, touches few other projects.

Scores use BLAKE2b, never Python's ``hash()``: every process and every
release must compute the same shards.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import typing

_SHARDS_PER_FLEET = 4096
"""Shards remembered per set of candidate clusters (then forgotten)."""


def score(project_id: str, cluster_name: str) -> bytes:
    """The rendezvous score of a pair (compare as bytes; higher wins)."""
    return hashlib.blake2b(
        project_id.encode('utf-8') + b'\0' + cluster_name.encode('utf-8'),
        digest_size=8).digest()


def shard(project_id: str, cluster_names: typing.Iterable[str],
          size: int) -> tuple[str, ...]:
    """The ``size`` clusters of ``cluster_names`` that ``project_id`` uses.

    :param cluster_names: the clusters to choose from, any order.
    :param size: how many; all of them when there are not more than that.
    :returns: the chosen names, highest score first; the same for the same
        project and set of names, whatever their order and in any process.
    """
    return _fleet(frozenset(cluster_names)).shard(project_id, size)


class _Fleet:
    """One set of candidate clusters and the shards computed over it."""

    def __init__(self, names):
        self.names = tuple((name.encode('utf-8'), name) for name in names)
        self.shards = {}

    def shard(self, project_id, size):
        key = (project_id, size)
        found = self.shards.get(key)
        if found is None:
            found = self._compute(project_id, size)
            if len(self.shards) >= _SHARDS_PER_FLEET:
                self.shards.clear()
            self.shards[key] = found
        return found

    def _compute(self, project_id, size):
        # Hashing the project prefix once and copying that state gives the
        # same BLAKE2b input as score(), at about 0.3 us per cluster.
        prefix = hashlib.blake2b(project_id.encode('utf-8') + b'\0',
                                 digest_size=8)
        copy = prefix.copy
        scored = []
        append = scored.append
        for encoded, name in self.names:
            digest = copy()
            digest.update(encoded)
            append((digest.digest(), name))
        # Ties (equal 8-byte scores) go by name: the order of the fleet
        # never matters.
        return tuple(name for _score, name in heapq.nlargest(
            min(size, len(scored)), scored))


@functools.lru_cache(maxsize=64)
def _fleet(names):
    # NOTE: the candidate set is the same for every request of a flavor
    # and zone until the fleet changes, so a project placing several load
    # balancers hashes the fleet once.
    return _Fleet(names)
