"""The state store's keys: one function per kind of key.

Key layout (all values JSON)::

    lb/<lb id>                    the placement record of one load balancer
    idx/<object id>               {"lb": <lb id>, "type": <object type>}
    cluster/<name>/count          load balancers placed on the cluster
    cluster/<name>/listeners      listeners the agent applied on it
    cluster/<name>/admin          operator state: {"draining": bool, ...}
    cluster/<name>/health         agent's last probe: {"reachable", "at", ...}
    cluster/<name>/breaker        the cluster's circuit breaker, as its
                                  owning agent shares it
    placement/<cluster>/<lb id>   placement marker (lists a cluster's LBs)
    project/<project>/<cluster>   that project's load balancers on the cluster
    work/<cluster>/<lb id>/<seq>  one pending operation (an *intent*)
    outbox/<cluster>/<seq>        a status update not yet accepted by Octavia
    stats/<lb id>                 listener statistics totals
                                  {listener id: {counter: total}}
    sent/<lb id>                  what multilb reported of each object:
                                  {id: [provisioning, operating]}
                                  (multilb.status.merge_sent)
    vip/<pool>/<address>          a pool VIP handed out or in quarantine
                                  (multilb.vips)
    bind/<domain>/<address>/<port>  the listener that binds it
                                  (multilb.bindings)
    owner/<cluster>               the agent that drives the cluster
                                  (multilb.fencing)
    late/<cluster>/<lb id>        a write an agent made after losing the
                                  cluster: the owner re-applies the LB
    move/<lb id>                  a move of the LB to another cluster
                                  (multilb.moves)
    schema                        {"version": SCHEMA_VERSION, "at": ...}:
                                  the layout the store holds (written by
                                  the first agent; checked by every agent)

The functions below build them; :mod:`multilb.state` and the modules that
commit to the store directly (:mod:`multilb.moves`, :mod:`multilb.rebuild`)
use them, so that the layout is written down once.

A change of this layout that older code would misread raises
:data:`SCHEMA_VERSION` and comes with a migration in ``multilb-manage store
upgrade`` (:mod:`multilb.schema`).
"""

SCHEMA_VERSION = 1
"""The key layout above. Agents refuse to drive clusters on a store of
another version; ``multilb-manage store upgrade`` migrates older ones."""


def schema_key():
    return 'schema'


def lb_key(lb_id):
    return 'lb/' + lb_id


def idx_key(object_id):
    return 'idx/' + object_id


def count_key(cluster):
    return 'cluster/%s/count' % cluster


def marker_key(cluster, lb_id):
    return 'placement/%s/%s' % (cluster, lb_id)


def project_key(project_id, cluster):
    return 'project/%s/%s' % (project_id, cluster)


def listeners_key(cluster):
    return 'cluster/%s/listeners' % cluster


def admin_key(cluster):
    return 'cluster/%s/admin' % cluster


def health_key(cluster):
    return 'cluster/%s/health' % cluster


def breaker_key(cluster):
    return 'cluster/%s/breaker' % cluster


def stats_key(lb_id):
    return 'stats/' + lb_id


def sent_key(lb_id):
    return 'sent/' + lb_id


def work_prefix(cluster, lb_id=''):
    return 'work/%s/%s' % (cluster, lb_id + '/' if lb_id else '')


def outbox_prefix(cluster):
    return 'outbox/%s/' % cluster
