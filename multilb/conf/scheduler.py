"""Options of ``[multilb_scheduler]``: which filters and weighers run, and how.

Read once per process by :class:`scheduler.manager.ClusterScheduler`.
"""

from oslo_config import cfg

GROUP = 'multilb_scheduler'

DEFAULT_FILTERS = [
    'AvailabilityZoneFilter',
    'FlavorFilter',
    'DedicatedClusterFilter',
    'TenantShardFilter',
    'DrainFilter',
    'HealthFilter',
    'CapabilitiesFilter',
    'CapacityFilter',
]

DEFAULT_WEIGHERS = [
    'FreeCapacityWeigher',
    'TenantAffinityWeigher',
    'RecentErrorsWeigher',
]

opts = [
    cfg.ListOpt(
        'enabled_filters', default=DEFAULT_FILTERS,
        help="""
Filters that decide which clusters may take a new load balancer, in the
order they run.

Each filter sees only the clusters the previous ones kept. When no cluster
is left, the load balancer is refused and the log says, filter by filter,
which clusters were removed and why. Keep CapacityFilter: without it a full
cluster may be chosen, and every reservation on it then fails.

Possible values:

* Entry-point names of the ``multilb.scheduler.filters`` group. Shipped:
  AvailabilityZoneFilter, FlavorFilter, DedicatedClusterFilter,
  TenantShardFilter, DrainFilter, HealthFilter, CapabilitiesFilter,
  CapacityFilter. An unknown name stops multilb from placing load balancers
  and the error lists the installed names.

Related options:

* ``enabled_weighers``: order the clusters the filters keep.
"""),
    cfg.ListOpt(
        'enabled_weighers', default=DEFAULT_WEIGHERS,
        help="""
Weighers that order the clusters kept by the filters.

Each weigher's values are normalised to the range 0..1 over the candidate
clusters, multiplied by the weigher's multiplier
(``<name>_weight_multiplier``) and summed; the highest total wins.

Possible values:

* Entry-point names of the ``multilb.scheduler.weighers`` group. Shipped:
  FreeCapacityWeigher, TenantAffinityWeigher, RecentErrorsWeigher. An empty
  list leaves every cluster with the same weight.

Related options:

* ``free_capacity_weight_multiplier``
* ``tenant_affinity_weight_multiplier``
* ``recent_errors_weight_multiplier``
* ``subset_size``
"""),
    cfg.FloatOpt(
        'free_capacity_weight_multiplier', default=1.0,
        help="""
Multiplier of the free-capacity weight (free load-balancer slots).

Positive values spread load balancers over the clusters (the cluster with
the most free slots wins); negative values pack them (fill a cluster before
using an emptier one). A flavor with ``placement: pack`` reverses the sign
for its load balancers. An unlimited cluster (``max_loadbalancers = 0``)
counts as one slot larger than the largest candidate: the largest
``max_loadbalancers`` of the limited candidates, or the most load balancers
placed on any candidate if that is more.

Possible values:

* Any float; 0 disables the weigher.

Related options:

* ``enabled_weighers`` must list FreeCapacityWeigher.
"""),
    cfg.FloatOpt(
        'tenant_affinity_weight_multiplier', default=0.0,
        help="""
Multiplier of the tenant-affinity weight (load balancers the requesting
project already has on the cluster).

Positive values keep a project's load balancers together on the clusters
that already host it; negative values spread each project over as many
clusters as possible.

Possible values:

* Any float; 0 (the default) disables the weigher.

Related options:

* ``enabled_weighers`` must list TenantAffinityWeigher.
* ``shard_size`` confines a project to a few clusters outright.
"""),
    cfg.FloatOpt(
        'recent_errors_weight_multiplier', default=-1.0,
        help="""
Multiplier of the recent-errors weight (failed appliance operations in the
provider agent's recent window).

Negative values (the default) avoid clusters that have been failing;
positive values would prefer them.

Possible values:

* Any float; 0 disables the weigher.

Related options:

* ``enabled_weighers`` must list RecentErrorsWeigher.
"""),
    cfg.IntOpt(
        'shard_size', default=0, min=0,
        help="""
Number of clusters each project may use (shuffle sharding).

Each project is confined to its own deterministic subset of this many
clusters among those that suit the request, so that one broken cluster
affects only the few projects whose subset contains it. Adding or removing a
cluster moves few projects.

Possible values:

* 0 (default): sharding is off.
* A positive number of clusters. A flavor's ``shard_size`` key overrides it
  for that flavor's load balancers.

Related options:

* ``enabled_filters`` must list TenantShardFilter. The shard is chosen among
  the clusters the filters before it kept: in the default order a shard does
  not move when one of its clusters is drained, unhealthy or full (better
  isolation, but such a project may be refused while other clusters have
  room); list it after DrainFilter, HealthFilter and CapacityFilter to let
  shards move around those clusters instead.
"""),
    cfg.BoolOpt(
        'confine_dedicated_projects', default=True,
        help="""
Keep projects that own dedicated clusters off the shared ones.

A cluster whose ``projects`` option is set is dedicated: it takes load
balancers of those projects only. When this option is true, a project that
owns at least one dedicated cluster suitable for the request is placed only
on its dedicated clusters; when false, it may also use shared clusters.

Possible values:

* true (default) or false.

Related options:

* ``[cluster:<name>] projects``
* ``enabled_filters`` must list DedicatedClusterFilter.
"""),
    cfg.IntOpt(
        'subset_size', default=1, min=1,
        help="""
Number of best-weighed clusters the scheduler picks from at random.

API workers that place load balancers at the same moment read the same
cluster counters; picking at random among the best few makes them race for
the same counter less often (a lost race is retried, which costs time).
Clusters that share the best weight are always part of the pick, so even
with 1 the choice among equally good clusters is random.

Possible values:

* 1 (default): the best cluster, or one of those that tie for best.
* A larger number of clusters: more spread under concurrency, at the cost
  of sometimes not taking the best cluster.

Related options:

* ``enabled_weighers``
"""),
]


def register_opts(conf):
    conf.register_opts(opts, group=GROUP)


def list_opts():
    return [(GROUP, opts)]
