"""TenantShardFilter: each project uses only its own few clusters.

Shuffle sharding (:mod:`scheduler.sharding`): among the clusters this filter
receives, a project is confined to a deterministic subset of
``[multilb_scheduler] shard_size`` clusters (the flavor's ``shard_size`` key
overrides it; 0 turns sharding off). A broken or flooded cluster then
affects only the projects whose shard contains it.

The shard is chosen among this filter's input, so the filters before it
decide what a shard is made of. In the default order it runs after the
flavor, availability-zone and dedicated-cluster filters (a shard always
suits the request) and before the drain, health and capacity filters: a
project's shard does not move when one of its clusters is drained, fails or
fills up, which keeps the isolation but means such a project may be refused
while other clusters have room. Put TenantShardFilter after those filters to
let shards move around unavailable clusters instead.
"""

from scheduler import filters
from scheduler import sharding


class TenantShardFilter(filters.BaseClusterFilter):
    """Keep the clusters of the requesting project's shard."""

    def __init__(self, options):
        super().__init__(options)
        self.shard_size = options.shard_size

    def filter_all(self, clusters, request):
        size = request.flavor.get('shard_size') or self.shard_size
        if not size or size >= len(clusters):
            return list(clusters), []
        chosen = frozenset(sharding.shard(
            request.project_id, [cluster.name for cluster in clusters], size))
        why = "not in project %s's shard (%d of %d clusters)" % (
            request.project_id, size, len(clusters))
        return ([cluster for cluster in clusters if cluster.name in chosen],
                [(cluster, why) for cluster in clusters
                 if cluster.name not in chosen])
