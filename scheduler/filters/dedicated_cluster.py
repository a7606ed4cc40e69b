"""DedicatedClusterFilter: clusters reserved for some projects.

A cluster whose ``projects`` option is set takes only those projects' load
balancers. With ``[multilb_scheduler] confine_dedicated_projects`` (the
default), a project that owns a dedicated cluster among the candidates is
also kept off the shared clusters, so its load balancers stay on hardware
bought for it.
"""

from scheduler import filters


class DedicatedClusterFilter(filters.BaseClusterFilter):
    """Keep dedicated clusters for their projects (and them on those)."""

    def __init__(self, options):
        super().__init__(options)
        self.confine = options.confine_dedicated_projects

    def filter_all(self, clusters, request):
        project = request.project_id
        owns = self.confine and any(project in cluster.projects
                                    for cluster in clusters)
        kept, removed = [], []
        for cluster in clusters:
            if cluster.projects:
                if project in cluster.projects:
                    kept.append(cluster)
                else:
                    removed.append((cluster, 'dedicated to other projects'))
            elif owns:
                removed.append((cluster, 'shared, and project %s has '
                                'dedicated clusters' % project))
            else:
                kept.append(cluster)
        return kept, removed
